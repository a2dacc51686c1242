"""GET/PATCH /me and GET /protected: the guarded routes and every way past the guard."""

import pytest
from helpers import (
    OTHER_KEY,
    PASSWORD,
    SECRET,
    TAMPERINGS,
    USER_FIELDS,
    assert_error,
    assert_refused,
    bearer,
    change_after_each_password_check,
    forge,
    now,
    tamper,
)
from sqlalchemy import delete, func, update

from tokenservice.rules.passwords import verify_password
from tokenservice.storage.models import LoginSession, User


def test_me(client, alice):
    response = client.get("/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json["id"] == alice.id
    assert set(response.json) == USER_FIELDS
    assert response.headers["Cache-Control"] == "no-store"


def test_protected(client, alice):
    response = client.get("/protected", headers=alice.headers)
    assert response.json == {"id": alice.id, "username": "alice"}


def test_patch_me_changes_the_name(client, alice):
    response = client.patch("/me", json={"name": "Alice Smith"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json["name"] == "Alice Smith"
    assert client.get("/me", headers=alice.headers).json["name"] == "Alice Smith"
    assert client.patch("/me", json={"name": None}, headers=alice.headers).json["name"] is None


@pytest.mark.parametrize("body", [{"role": "admin"}, {"username": "mallory"}, {"is_active": False}, {"id": 9}])
def test_patch_me_changes_nothing_else(client, alice, database, body):
    response = client.patch("/me", json=body, headers=alice.headers)
    assert response.status_code == 400
    assert set(response.json["fields"]) == set(body)
    user = database.get(User, alice.id)
    assert (user.role, user.username, user.is_active) == ("user", "alice", True)


def test_patch_me_refuses_a_long_name(client, alice):
    assert client.patch("/me", json={"name": "x" * 201}, headers=alice.headers).status_code == 400


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_scheme_ignores_case(client, alice, scheme):
    headers = {"Authorization": f"{scheme} {alice.access_token}"}
    assert client.get("/me", headers=headers).status_code == 200


def test_no_token(client):
    assert_refused(client.get("/me"), "authorization_required")


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Token abc", "", "Bearerabc"])
def test_other_schemes_count_as_no_token(client, header):
    assert_refused(client.get("/me", headers={"Authorization": header}), "authorization_required")


@pytest.mark.parametrize("header", ["Bearer", "bearer ", "Bearer a b", "Bearer not.a.jwt", "Bearer abc"])
def test_malformed_bearer_headers_are_a_401_not_a_422(client, header):
    assert_refused(client.get("/me", headers={"Authorization": header}))


def test_a_token_in_the_query_string_is_not_read(client, alice):
    response = client.get(f"/me?jwt={alice.access_token}&access_token={alice.access_token}")
    assert_refused(response, "authorization_required")


def test_a_refresh_token_is_not_an_access_token(client, alice):
    assert_refused(client.get("/me", headers=alice.refresh_headers))


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_token_is_refused(client, alice, how):
    """An ordinary user's token, tampered with as test_guards tampers with an admin's on every route."""
    assert_refused(client.get("/me", headers=bearer(tamper(alice.claims, how))))


def test_a_tampered_payload_is_refused(client, alice):
    header, _, signature = alice.access_token.split(".")
    other = forge(alice.claims, sub="2", key=OTHER_KEY).split(".")[1]
    assert_refused(client.get("/me", headers=bearer(f"{header}.{other}.{signature}")))


def test_an_expired_token(client, alice):
    expired = forge(alice.claims, iat=now() - 1000, nbf=now() - 1000, exp=now() - 10)
    assert_refused(client.get("/me", headers=bearer(expired)), "token_expired")


@pytest.mark.parametrize("missing", ["sub", "sid", "exp", "jti"])
def test_a_token_without_a_needed_claim(client, alice, missing):
    token = forge(alice.claims, **{missing: None})
    assert_refused(client.get("/me", headers=bearer(token)))


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": "999"},
        {"sub": "not-a-number"},
        {"sid": "00000000-0000-0000-0000-000000000000"},
        {"sid": "not-a-uuid"},
    ],
)
def test_a_token_for_no_live_session(client, alice, changes):
    token = forge(alice.claims, **changes)
    assert_refused(client.get("/me", headers=bearer(token)))


def test_another_users_session_does_not_fit(client, alice, auth):
    auth.add_user("bob")
    bob = auth.login("bob")
    token = forge(alice.claims, sid=bob.claims["sid"])
    assert_refused(client.get("/me", headers=bearer(token)))


def test_an_ended_session_stops_its_tokens_at_once(client, alice, database):
    assert database.execute(update(LoginSession).values(ended_at=func.now())) == 1
    assert_refused(client.get("/me", headers=alice.headers))


def test_an_expired_session_stops_its_tokens(client, alice, database):
    assert database.execute(update(LoginSession).values(expires_at=func.now())) == 1
    assert_refused(client.get("/me", headers=alice.headers))


def test_a_deactivated_user_is_refused_at_once(client, alice, database):
    assert database.execute(update(User).values(is_active=False)) == 1
    assert_refused(client.get("/me", headers=alice.headers))


def test_a_deleted_user_is_refused(client, alice, database):
    assert database.execute(delete(User)) == 1
    assert_refused(client.get("/protected", headers=alice.headers))


def test_issuer_and_audience_when_configured(make_app, auth, alice):
    """POST /token puts them in the tokens, and the guards require them (test_keys does the same under key pairs)."""
    app = make_app(JWT_ISSUER="https://auth.example.com", JWT_AUDIENCE="example-api")
    client = app.test_client()
    claims = auth.login(client=client).claims
    assert claims["iss"] == "https://auth.example.com"
    assert claims["aud"] == "example-api"
    # A token of this service without iss/aud (made before they were set) is refused...
    assert_refused(client.get("/me", headers=alice.headers))
    wrong_audience = forge(alice.claims, iss="https://auth.example.com", aud="another-api")
    assert_refused(client.get("/me", headers=bearer(wrong_audience)))
    # ...and one that carries both is accepted.
    right = forge(alice.claims, iss="https://auth.example.com", aud="example-api", key=SECRET)
    assert client.get("/me", headers=bearer(right)).status_code == 200


def change_password(client, headers, current=PASSWORD, new="a brand new passphrase"):
    return client.post("/me/password", json={"current_password": current, "new_password": new}, headers=headers)


def test_password_change_keeps_this_session_and_ends_the_others(client, alice, auth):
    other = auth.login()
    response = change_password(client, alice.headers)
    assert response.status_code == 204
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert auth.refresh(alice.refresh_token).status_code == 200
    assert_refused(client.get("/me", headers=other.headers))
    assert_refused(auth.refresh(other.refresh_token))
    assert_error(auth.token("alice", PASSWORD), 401, "invalid_credentials")
    assert auth.login("alice", "a brand new passphrase").id == alice.id


def test_password_change_needs_the_current_password(client, alice, auth):
    other = auth.login()
    response = change_password(client, alice.headers, current="not my password")
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"current_password"}
    assert client.get("/me", headers=other.headers).status_code == 200
    assert auth.login().id == alice.id  # the old password still works


@pytest.mark.parametrize("new", ["short", "password123", "alice", " " * 9])
def test_password_change_applies_the_password_rules(client, alice, new):
    response = change_password(client, alice.headers, new=new)
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"new_password"}


def test_password_change_refuses_unknown_fields(client, alice):
    body = {"current_password": PASSWORD, "new_password": "a brand new passphrase", "username": "x"}
    response = client.post("/me/password", json=body, headers=alice.headers)
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"username"}


def test_password_change_needs_an_access_token(client, alice):
    assert_refused(change_password(client, alice.refresh_headers))


@pytest.mark.parametrize("meanwhile", ["deactivated", "logged out"])
def test_a_password_change_loses_to_what_happened_while_it_was_hashed(client, alice, database, monkeypatch, meanwhile):
    """The passwords are hashed holding no lock: a deactivation or a logout that lands meanwhile wins."""
    change = {
        "deactivated": update(User).where(User.id == alice.id).values(is_active=False),
        "logged out": update(LoginSession).where(LoginSession.user_id == alice.id).values(ended_at=func.now()),
    }[meanwhile]
    change_after_each_password_check(monkeypatch, database, lambda: change)
    body = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    assert_refused(client.post("/me/password", json=body, headers=alice.headers))
    assert database.get(User, alice.id).password_hash.startswith("$argon2id$")
    assert verify_password(database.get(User, alice.id).password_hash, PASSWORD)[0]  # unchanged
