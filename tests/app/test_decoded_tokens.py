"""Each token string is verified once per worker (tokens/decoded_tokens.py); nothing the library refuses gets past."""

import flask_jwt_extended.tokens
import pytest
from helpers import OTHER_KEY, assert_error, assert_refused, bearer, claims_of, forge, now, tampered

from tokenservice.tokens import decoded_tokens


@pytest.fixture
def decodes(monkeypatch):
    """How many times PyJWT decodes a token through Flask-JWT-Extended's verified path."""
    calls = []
    original = flask_jwt_extended.tokens.jwt.decode

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(flask_jwt_extended.tokens.jwt, "decode", counting)
    return calls


def test_a_token_is_decoded_once(client, alice, decodes):
    assert client.get("/me", headers=alice.headers).status_code == 200
    first = len(decodes)
    assert first >= 1  # the library's own decodes (unverified, then verified)
    for _ in range(3):
        assert client.get("/me", headers=alice.headers).status_code == 200
    assert len(decodes) == first


def test_a_changed_signature_is_refused_after_the_token_was_remembered(client, alice):
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert_refused(client.get("/me", headers=bearer(tampered(alice.access_token))))


def test_a_remembered_token_expires(client, alice, monkeypatch):
    issued = now()
    short = forge(claims_of(alice.access_token), exp=issued + 60)
    assert client.get("/me", headers=bearer(short)).status_code == 200
    monkeypatch.setattr(decoded_tokens, "clock", lambda: issued + 59.9)
    assert client.get("/me", headers=bearer(short)).status_code == 200
    monkeypatch.setattr(decoded_tokens, "clock", lambda: issued + 60)
    assert_error(client.get("/me", headers=bearer(short)), 401, "token_expired")


def test_a_remembered_token_is_not_valid_before_its_nbf(client, alice, monkeypatch):
    issued = now()
    early = forge(claims_of(alice.access_token), nbf=issued)
    assert client.get("/me", headers=bearer(early)).status_code == 200
    monkeypatch.setattr(decoded_tokens, "clock", lambda: issued - 60)  # the same string, seen a minute earlier
    assert_refused(client.get("/me", headers=bearer(early)))


def test_each_app_remembers_for_its_own_keys(app, make_app, alice):
    assert app.test_client().get("/me", headers=alice.headers).status_code == 200
    other = make_app(JWT_SECRET_KEY=OTHER_KEY).test_client()
    assert_refused(other.get("/me", headers=alice.headers))


def test_cookie_requests_still_need_their_csrf_value(make_app, auth):
    auth.add_user("alice")
    client = make_app(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SECURE="false").test_client()
    tokens = auth.login(client=client)
    assert client.get("/me", headers=tokens.headers).status_code == 200  # remembered, from the header
    # The same access token, now from its cookie, on a write without X-CSRF-TOKEN.
    response = client.patch("/me", json={"name": "Mallory"})
    assert response.status_code == 403 and response.json["error"] == "csrf_failed"
