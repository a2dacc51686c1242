"""Introspection (RFC 7662) and revocation (RFC 7009): what other services ask about a token."""

import pytest
from helpers import OTHER_KEY, assert_error, assert_refused, basic, bearer, claims_of, forge, now
from sqlalchemy import func, update

from tokenservice.storage.models import LoginSession

INACTIVE = {"active": False}


@pytest.fixture
def introspector(auth):
    """A client that holds the introspect scope: its HTTP Basic headers."""
    return basic(*auth.add_client("introspect", name="resource server"))


def introspect(client, headers, token: str, **form):
    response = client.post("/introspect", data={"token": token, **form}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"].startswith("no-store")
    return response.json


def test_a_live_access_token_is_active_with_its_claims(client, introspector, alice):
    answer = introspect(client, introspector, alice.access_token)
    claims = alice.claims
    assert answer == {
        "active": True,
        "sub": claims["sub"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "sid": claims["sid"],
        "type": "access",
        "token_type": "Bearer",
    }


def test_a_logout_is_seen_at_once(client, introspector, alice):
    assert client.post("/logout", headers=alice.headers).status_code == 204
    assert introspect(client, introspector, alice.access_token) == INACTIVE
    assert introspect(client, introspector, alice.refresh_token) == INACTIVE


@pytest.mark.parametrize(
    "how",
    ["forged", "expired", "ended", "bogus-type", "other-issuer", "not-a-jwt", "device-token", "alg-none"],
)
def test_every_kind_of_bad_token_is_only_inactive(client, introspector, alice, database, make_app, how):
    claims = alice.claims
    token = {
        "forged": lambda: forge(claims, key=OTHER_KEY),
        "expired": lambda: forge(claims, iat=now() - 100, nbf=now() - 100, exp=now() - 10),
        "ended": lambda: alice.access_token,
        "bogus-type": lambda: forge(claims, type="id"),
        "other-issuer": lambda: forge(claims, iss="https://someone-else.example"),
        "not-a-jwt": lambda: "hello",
        "device-token": lambda: alice.tokens["device_token"],
        "alg-none": lambda: forge(claims, key=None, algorithm="none"),
    }[how]()
    if how == "ended":
        database.execute(update(LoginSession).values(ended_at=func.now()))
    app = make_app(JWT_ISSUER="https://auth.example.com") if how == "other-issuer" else None
    if app is not None:  # the service checks iss: a token of another issuer is not one of its own
        assert introspect(app.test_client(), introspector, token) == INACTIVE
    else:
        assert introspect(client, introspector, token) == INACTIVE


def test_the_current_refresh_token_is_active_a_rotated_one_is_not(client, auth, introspector, alice):
    answer = introspect(client, introspector, alice.refresh_token)
    assert answer["active"] is True and answer["type"] == "refresh"  # a resource server can tell it apart
    assert auth.refresh(alice.refresh_token).status_code == 200
    assert introspect(client, introspector, alice.refresh_token) == INACTIVE


def test_issuer_and_audience_are_given_when_configured(make_app, auth_for, introspector):
    app = make_app(JWT_ISSUER="https://auth.example.com", JWT_AUDIENCE="billing")
    auth = auth_for(app)
    auth.add_user("alice")
    login = auth.login("alice")
    answer = introspect(app.test_client(), introspector, login.access_token)
    assert answer["iss"] == "https://auth.example.com" and answer["aud"] == "billing"


def test_a_clients_token_is_active_with_its_client_and_scope(client, auth, admin, introspector):
    client_id, secret = auth.add_client("users:read")
    token = auth.client_token(client_id, secret).json["access_token"]
    answer = introspect(client, introspector, token)
    assert answer["active"] is True and answer["client_id"] == client_id and answer["scope"] == "users:read"
    assert client.patch(f"/clients/{client_id}", json={"is_active": False}, headers=admin.headers).status_code == 200
    assert introspect(client, introspector, token) == INACTIVE


def test_only_a_client_with_the_introspect_scope_may_ask(client, auth, alice):
    form = {"token": alice.access_token}
    no_client = client.post("/introspect", data=form)
    assert_error(no_client, 401, "invalid_client")
    assert_error(client.post("/introspect", data=form, headers=alice.headers), 401, "invalid_client")  # a user's
    reader = basic(*auth.add_client("users:read"))
    assert_error(client.post("/introspect", data=form, headers=reader), 403, "forbidden")
    client_id, secret = auth.add_client("introspect")
    wrong = client.post("/introspect", data=form, headers=basic(client_id, secret + "x"))
    assert_error(wrong, 401, "invalid_client")
    in_the_form = client.post("/introspect", data={**form, "client_id": client_id, "client_secret": secret})
    assert in_the_form.status_code == 200 and in_the_form.json["active"] is True


def revoke(client, token: str, headers=None, **form):
    return client.post("/revoke", data={"token": token, **form}, headers=headers)


def test_revoking_an_access_token_ends_its_session(client, auth, alice):
    response = revoke(client, alice.access_token)
    assert response.status_code == 200
    assert_refused(client.get("/me", headers=alice.headers))
    assert auth.refresh(alice.refresh_token).status_code == 401


def test_revoking_a_refresh_token_stops_its_access_tokens_too(client, alice):
    assert revoke(client, alice.refresh_token, token_type_hint="refresh_token").status_code == 200
    assert_refused(client.get("/me", headers=alice.headers))


def test_revoking_an_expired_access_token_still_ends_its_session(client, alice):
    expired = forge(alice.claims, iat=now() - 100, nbf=now() - 100, exp=now() - 10)
    assert revoke(client, expired).status_code == 200
    assert_refused(client.get("/me", headers=alice.headers))


@pytest.mark.parametrize("token", ["", "hello", "a.b.c", forge({"sub": "1"}, key=OTHER_KEY)])
def test_an_unknown_or_invalid_token_is_a_200(client, alice, token):
    assert revoke(client, token or "x").status_code == 200
    assert client.get("/me", headers=alice.headers).status_code == 200


def test_revoking_an_ended_token_again_is_a_200(client, alice):
    assert revoke(client, alice.access_token).status_code == 200
    assert revoke(client, alice.access_token).status_code == 200


def test_a_clients_token_is_revoked_with_that_clients_credentials_only(client, auth):
    client_id, secret = auth.add_client("users:read")
    token = auth.client_token(client_id, secret).json["access_token"]
    assert_error(revoke(client, token), 401, "invalid_client")
    other = basic(*auth.add_client("users:read"))
    assert_error(revoke(client, token, headers=other), 400, "unauthorized_client")
    assert client.get("/users", headers=bearer(token)).status_code == 200
    assert revoke(client, token, headers=basic(client_id, secret)).status_code == 200
    assert_refused(client.get("/users", headers=bearer(token)))
    assert claims_of(token)["client_id"] == client_id


def test_the_scope_is_the_rows_not_the_tokens_claim(client, auth, introspector):
    """Under HS256 every verifying service holds the key: a client token re-signed with more scope gets no more."""
    client_id, secret = auth.add_client("introspect")
    token = auth.client_token(client_id, secret).json["access_token"]
    widened = forge(claims_of(token), scope="introspect users:read")
    assert client.get("/users", headers=bearer(widened)).status_code == 403
    assert introspect(client, introspector, widened)["scope"] == "introspect"


def test_a_public_client_may_send_its_client_id_alone(client, alice):
    assert revoke(client, alice.access_token, client_id="spa").status_code == 200
    assert_refused(client.get("/me", headers=alice.headers))
