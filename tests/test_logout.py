"""POST /logout: ends the caller's session at once, or every session with ?all=true."""

import base64

import pytest
from helpers import PASSWORD, bearer, claims_of, forge, now


def assert_refused(response):
    assert response.status_code == 401, response.json
    assert response.json["error"] == "invalid_token"


def test_logout_stops_the_sessions_access_and_refresh_tokens(client, alice):
    response = client.post("/logout", headers=alice["headers"])
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_refused(client.get("/me", headers=alice["headers"]))
    assert_refused(client.post("/token/refresh", headers=bearer(alice["tokens"]["refresh_token"])))
    assert_refused(
        client.post("/token", json={"grant_type": "refresh_token", "refresh_token": alice["tokens"]["refresh_token"]})
    )


def test_logout_with_the_refresh_token(client, alice):
    assert client.post("/logout", headers=bearer(alice["tokens"]["refresh_token"])).status_code == 204
    assert_refused(client.get("/me", headers=alice["headers"]))


def test_logout_with_an_expired_access_token(client, alice):
    expired = forge(claims_of(alice["tokens"]["access_token"]), iat=now() - 3600, nbf=now() - 3600, exp=now() - 60)
    assert client.get("/me", headers=bearer(expired)).json["error"] == "token_expired"
    assert client.post("/logout", headers=bearer(expired)).status_code == 204
    assert_refused(client.post("/token/refresh", headers=bearer(alice["tokens"]["refresh_token"])))


def test_an_expired_token_with_a_bad_signature_cannot_log_out(client, alice):
    claims = claims_of(alice["tokens"]["access_token"])
    forged = forge(claims, key="some-other-key-that-is-long-enough-for-hs256!!", exp=now() - 60)
    assert_refused(client.post("/logout", headers=bearer(forged)))
    assert client.get("/me", headers=alice["headers"]).status_code == 200


def test_logout_needs_a_token(client):
    response = client.post("/logout")
    assert response.status_code == 401
    assert response.json["error"] == "authorization_required"


def test_logging_out_twice(client, alice):
    assert client.post("/logout", headers=alice["headers"]).status_code == 204
    assert_refused(client.post("/logout", headers=alice["headers"]))


def test_an_expired_token_of_an_ended_session_cannot_end_others(client, alice, login):
    other = login()
    expired = forge(claims_of(alice["tokens"]["access_token"]), exp=now() - 60)
    assert client.post("/logout", headers=alice["headers"]).status_code == 204
    assert_refused(client.post("/logout?all=true", headers=bearer(expired)))
    assert client.get("/me", headers=bearer(other["access_token"])).status_code == 200


def test_logout_ends_only_the_callers_session(client, alice, login):
    other = login()
    assert client.post("/logout", headers=alice["headers"]).status_code == 204
    assert client.get("/me", headers=bearer(other["access_token"])).status_code == 200


def test_logout_all_ends_every_session_of_the_user_and_no_one_elses(client, alice, login, add_user):
    second = login()
    add_user("bob")
    bob = login("bob", PASSWORD)
    assert client.post("/logout?all=true", headers=alice["headers"]).status_code == 204
    assert_refused(client.get("/me", headers=alice["headers"]))
    assert_refused(client.get("/me", headers=bearer(second["access_token"])))
    assert_refused(client.post("/token/refresh", headers=bearer(second["refresh_token"])))
    assert client.get("/me", headers=bearer(bob["access_token"])).status_code == 200
    assert client.post("/token/refresh", headers=bearer(bob["refresh_token"])).status_code == 200


@pytest.mark.parametrize("value", ["yes please", "2"])
def test_logout_all_must_be_a_boolean(client, alice, value):
    response = client.post(f"/logout?all={value}", headers=alice["headers"])
    assert response.status_code == 400
    assert "all" in response.json["fields"]
    assert client.get("/me", headers=alice["headers"]).status_code == 200


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
    token = alice["tokens"]["access_token"]
    twin = reencode_signature(token)
    assert twin != token
    # PyJWT 2.15 refuses non-canonical base64url, so the twin never worked;
    # revocation is keyed by session anyway, so neither it nor any other
    # spelling of the token can outlive the logout.
    assert client.post("/logout", headers=bearer(token)).status_code == 204
    assert_refused(client.get("/me", headers=bearer(twin)))
    assert_refused(client.get("/me", headers=bearer(token)))


def test_a_token_of_an_expired_session_cannot_end_the_others(client, alice, login, app):
    from sqlalchemy import func, update

    from tokenservice.extensions import db
    from tokenservice.models import LoginSession

    current_device = login()
    old_sid = claims_of(alice["tokens"]["access_token"])["sid"]
    with app.app_context():  # the old session expired and was not purged yet
        db.session.execute(update(LoginSession).where(LoginSession.id == old_sid).values(expires_at=func.now()))
        db.session.commit()
    expired = forge(claims_of(alice["tokens"]["refresh_token"]), exp=now() - 60)
    assert_refused(client.post("/logout?all=true", headers=bearer(expired)))
    assert client.get("/me", headers=bearer(current_device["access_token"])).status_code == 200
