"""POST /logout: ends the caller's session at once, or every session with ?all=true."""

import base64

import pytest
from helpers import assert_refused, bearer, claims_of, forge, now
from sqlalchemy import func, update

from tokenservice.storage.models import LoginSession


def test_logout_stops_the_sessions_access_and_refresh_tokens(client, auth, alice):
    response = client.post("/logout", headers=alice.headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_refused(client.get("/me", headers=alice.headers))
    assert_refused(auth.refresh(alice.refresh_token))
    assert_refused(auth.grant(alice.refresh_token))


def test_logout_with_the_refresh_token(client, alice):
    assert client.post("/logout", headers=alice.refresh_headers).status_code == 204
    assert_refused(client.get("/me", headers=alice.headers))


def test_logout_with_an_expired_access_token(client, auth, alice):
    expired = forge(alice.claims, iat=now() - 3600, nbf=now() - 3600, exp=now() - 60)
    assert client.get("/me", headers=bearer(expired)).json["error"] == "token_expired"
    assert client.post("/logout", headers=bearer(expired)).status_code == 204
    assert_refused(auth.refresh(alice.refresh_token))


def test_an_expired_token_with_a_bad_signature_cannot_log_out(client, alice):
    forged = forge(alice.claims, key="some-other-key-that-is-long-enough-for-hs256!!", exp=now() - 60)
    assert_refused(client.post("/logout", headers=bearer(forged)))
    assert client.get("/me", headers=alice.headers).status_code == 200


def test_logout_needs_a_token(client):
    assert_refused(client.post("/logout"), "authorization_required")


def test_logging_out_twice(client, alice):
    assert client.post("/logout", headers=alice.headers).status_code == 204
    assert_refused(client.post("/logout", headers=alice.headers))


def test_an_expired_token_of_an_ended_session_cannot_end_others(client, auth, alice):
    other = auth.login()
    expired = forge(alice.claims, exp=now() - 60)
    assert client.post("/logout", headers=alice.headers).status_code == 204
    assert_refused(client.post("/logout?all=true", headers=bearer(expired)), "token_expired")
    assert client.get("/me", headers=other.headers).status_code == 200


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_an_expired_token_of_a_live_session_cannot_end_every_session(client, auth, alice, kind):
    """A token that leaked weeks ago is no lasting "log this user out everywhere" button."""
    other = auth.login()
    token = alice.access_token if kind == "access" else alice.refresh_token
    expired = forge(claims_of(token), iat=now() - 3600, nbf=now() - 3600, exp=now() - 60)
    response = client.post("/logout?all=true", headers=bearer(expired))
    assert_refused(response, "token_expired")
    assert "has not expired" in response.json["message"]
    # Nothing ended: not the other session, not even the token's own (it may still refresh, then log out everywhere).
    assert client.get("/me", headers=other.headers).status_code == 200
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert client.post("/logout?all=true", headers=alice.headers).status_code == 204
    assert_refused(client.get("/me", headers=other.headers))


def test_logout_ends_only_the_callers_session(client, auth, alice):
    other = auth.login()
    assert client.post("/logout", headers=alice.headers).status_code == 204
    assert client.get("/me", headers=other.headers).status_code == 200


def test_logout_all_ends_every_session_of_the_user_and_no_one_elses(client, auth, alice):
    second = auth.login()
    auth.add_user("bob")
    bob = auth.login("bob")
    assert client.post("/logout?all=true", headers=alice.headers).status_code == 204
    assert_refused(client.get("/me", headers=alice.headers))
    assert_refused(client.get("/me", headers=second.headers))
    assert_refused(auth.refresh(second.refresh_token))
    assert client.get("/me", headers=bob.headers).status_code == 200
    assert auth.refresh(bob.refresh_token).status_code == 200


@pytest.mark.parametrize("value", ["yes please", "2"])
def test_logout_all_must_be_a_boolean(client, alice, value):
    response = client.post(f"/logout?all={value}", headers=alice.headers)
    assert response.status_code == 400
    assert "all" in response.json["fields"]
    assert client.get("/me", headers=alice.headers).status_code == 200


def reencode_signature(token: str) -> str:
    """The same signature bytes, written differently: flip an unused low bit of the last character."""
    header, payload, signature = token.split(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    for candidate in alphabet:
        other = signature[:-1] + candidate
        if candidate != signature[-1] and alphabet.index(candidate) >> 2 == last >> 2:
            assert base64.urlsafe_b64decode(other + "=" * (-len(other) % 4)) == raw
            return f"{header}.{payload}.{other}"
    raise AssertionError("no other encoding found")


def test_a_reencoded_signature_after_logout_is_still_refused(client, alice):
    token = alice.access_token
    twin = reencode_signature(token)
    assert twin != token
    # PyJWT refuses non-canonical base64url, so the twin is refused even
    # before logout, while the token itself works.
    assert_refused(client.get("/me", headers=bearer(twin)))
    assert client.get("/me", headers=bearer(token)).status_code == 200
    assert client.post("/logout", headers=bearer(token)).status_code == 204
    assert_refused(client.get("/me", headers=bearer(token)))


def test_a_token_of_an_expired_session_cannot_end_the_others(client, auth, alice, database):
    current_device = auth.login()
    old_sid = alice.claims["sid"]
    # The old session expired and was not purged yet.
    assert database.execute(update(LoginSession).where(LoginSession.id == old_sid).values(expires_at=func.now())) == 1
    expired = forge(claims_of(alice.refresh_token), exp=now() - 60)
    assert_refused(client.post("/logout?all=true", headers=bearer(expired)), "token_expired")
    assert client.get("/me", headers=current_device.headers).status_code == 200
