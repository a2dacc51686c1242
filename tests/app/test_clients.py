"""Credentials for machines: clients an admin creates, their scoped tokens, and stopping them."""

from helpers import assert_error, assert_forbidden, assert_refused, basic, bearer, claims_of
from sqlalchemy import func, select, update

from tokenservice.storage.models import ApiClient, ClientToken


def token_of(auth, client_id, secret, **form) -> str:
    response = auth.client_token(client_id, secret, **form)
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def test_an_admin_creates_a_client_whose_secret_is_shown_once(client, admin, database):
    response = client.post("/clients", json={"name": "nightly export", "scopes": ["users:read"]}, headers=admin.headers)
    assert response.status_code == 201 and response.headers["Cache-Control"].startswith("no-store")
    body = response.json
    assert set(body) == {"client_id", "client_secret", "name", "scopes"}
    assert body["client_id"].startswith("tsc_") and body["client_secret"].startswith("tokenservice_secret_")
    assert response.headers["Location"] == f"/clients/{body['client_id']}"
    stored = database.scalar(select(ApiClient.secret_hash))
    assert body["client_secret"].encode() not in stored and len(stored) == 32
    listed = client.get("/clients", headers=admin.headers).json["items"]
    assert [item["client_id"] for item in listed] == [body["client_id"]]
    assert "client_secret" not in listed[0]


def test_only_admins_manage_clients(client, alice):
    assert_forbidden(client.post("/clients", json={"name": "x", "scopes": ["introspect"]}, headers=alice.headers))
    assert_refused(client.get("/clients"), "authorization_required")


def test_unknown_scopes_are_a_400(client, admin):
    response = client.post("/clients", json={"name": "x", "scopes": ["users:write"]}, headers=admin.headers)
    assert_error(response, 400, "invalid_request")


def test_the_client_credentials_grant_gives_a_scoped_token_and_no_refresh_token(auth):
    client_id, secret = auth.add_client("introspect", "users:read")
    response = auth.client_token(client_id, secret)
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "token_type", "expires_in", "scope"}
    claims = claims_of(response.json["access_token"])
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == response.json["scope"] == "introspect users:read" and claims["type"] == "access"
    narrowed = auth.client_token(client_id, secret, scope="users:read").json
    assert narrowed["scope"] == "users:read"
    # The form, as RFC 6749 2.3.1 allows.
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    assert auth.client.post("/token", data=form).status_code == 200


def test_wrong_credentials_and_a_scope_the_client_lacks(auth):
    client_id, secret = auth.add_client("users:read")
    wrong = auth.client_token(client_id, secret + "x")
    assert_error(wrong, 401, "invalid_client")
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="api"'
    assert_error(auth.client_token("tsc_" + "B" * 22, secret), 401, "invalid_client")
    assert_error(auth.client_token("not-a-client", secret), 401, "invalid_client")
    no_credentials = auth.client.post("/token", data={"grant_type": "client_credentials"})
    assert_error(no_credentials, 401, "invalid_client")
    assert_error(auth.client_token(client_id, secret, scope="introspect"), 400, "invalid_scope")


def test_a_client_reaches_only_the_routes_that_take_clients_with_their_scope(auth, alice):
    readers_id, readers_secret = auth.add_client("users:read")
    reader = bearer(token_of(auth, readers_id, readers_secret))
    client = auth.client
    assert client.get("/users", headers=reader).status_code == 200
    assert client.get(f"/users/{alice.id}", headers=reader).status_code == 200
    # A user's routes, and an admin's changes: a client's token is refused there.
    for method, path in (("GET", "/me"), ("GET", "/protected"), ("PATCH", f"/users/{alice.id}"), ("GET", "/clients")):
        assert_forbidden(client.open(path, method=method, headers=reader, json={} if method == "PATCH" else None))
    assert_forbidden(client.post("/me/password", headers=reader, json={"current_password": "a", "new_password": "b"}))
    assert_forbidden(client.post("/logout", headers=reader))
    # Without the scope.
    other_id, other_secret = auth.add_client("introspect")
    assert_forbidden(client.get("/users", headers=bearer(token_of(auth, other_id, other_secret))))


def test_disabling_or_deleting_a_client_stops_its_tokens_at_once(client, admin, auth):
    client_id, secret = auth.add_client("users:read")
    token = bearer(token_of(auth, client_id, secret))
    assert client.get("/users", headers=token).status_code == 200
    disabled = client.patch(f"/clients/{client_id}", json={"is_active": False}, headers=admin.headers)
    assert disabled.status_code == 200 and disabled.json["is_active"] is False
    assert_refused(client.get("/users", headers=token))
    assert_error(auth.client_token(client_id, secret), 401, "invalid_client")
    assert client.patch(f"/clients/{client_id}", json={"is_active": True}, headers=admin.headers).status_code == 200
    assert_refused(client.get("/users", headers=token))  # ended, not paused
    fresh = bearer(token_of(auth, client_id, secret))
    assert client.delete(f"/clients/{client_id}", headers=admin.headers).status_code == 204
    assert_refused(client.get("/users", headers=fresh))
    assert_error(client.delete(f"/clients/{client_id}", headers=admin.headers), 404, "not_found")


def test_the_cli(runner, auth):
    created = runner.invoke(args=["clients", "create", "backup", "--scope", "users:read"])
    assert created.exit_code == 0, created.output
    client_id = created.output.split("client_id:")[1].split()[0]
    secret = created.output.split("client_secret:")[1].split()[0]
    assert auth.client_token(client_id, secret).status_code == 200
    assert client_id in runner.invoke(args=["clients", "list"]).output
    assert runner.invoke(args=["clients", "disable", client_id]).exit_code == 0
    assert_error(auth.client_token(client_id, secret), 401, "invalid_client")
    assert runner.invoke(args=["clients", "delete", client_id]).exit_code == 0
    assert runner.invoke(args=["clients", "delete", client_id]).exit_code == 1
    refused = runner.invoke(args=["clients", "create", "x", "--scope", "users:write"])
    assert refused.exit_code == 2


def test_client_secrets_are_never_in_a_log_line(client, admin, auth, app_log):
    created = client.post("/clients", json={"name": "ci", "scopes": ["introspect"]}, headers=admin.headers).json
    secret = created["client_secret"]
    auth.client_token(created["client_id"], secret)
    auth.client_token(created["client_id"], secret[:-1] + "x")
    form = {"grant_type": "client_credentials", "client_id": created["client_id"], "client_secret": secret}
    client.post("/token", data=form)
    client.post("/introspect", data={"token": "x"}, headers=basic(created["client_id"], secret))
    events = [record.getMessage() for record in app_log.records]
    assert "client_created" in events and "client_auth_failed" in events and "client_token_issued" in events
    logged = " ".join(str(vars(record)) for record in app_log.records)
    assert secret not in logged and secret[len("tokenservice_secret_") :] not in logged


def test_purge_deletes_ended_and_expired_client_tokens_only(runner, admin, auth, client, database):
    client_id, secret = auth.add_client("users:read")
    kept, revoked = (auth.client_token(client_id, secret).json["access_token"] for _ in range(2))
    assert client.post("/revoke", data={"token": revoked}, headers=basic(client_id, secret)).status_code == 200
    result = runner.invoke(args=["sessions", "purge"])
    assert "Deleted 1 ended or expired client tokens." in result.output
    assert client.get("/users", headers=bearer(kept)).status_code == 200
    assert database.scalar(select(func.count()).select_from(ClientToken)) == 1


def test_re_enabling_a_client_ends_any_token_granted_while_it_was_disabled(client, admin, auth, database):
    client_id, secret = auth.add_client("users:read")
    token = bearer(token_of(auth, client_id, secret))
    # What a grant racing the disable leaves: a live row of a disabled client.
    database.execute(update(ApiClient).values(is_active=False))
    assert_refused(client.get("/users", headers=token))
    assert client.patch(f"/clients/{client_id}", json={"is_active": True}, headers=admin.headers).status_code == 200
    assert_refused(client.get("/users", headers=token))
