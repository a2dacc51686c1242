"""POST /token: the three credential forms, the response, the claims."""

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PASSWORD, bearer, claims_of
from werkzeug.security import generate_password_hash

from tokenservice import passwords
from tokenservice import users as users_module
from tokenservice.extensions import db
from tokenservice.models import User
from tokenservice.routes import token as token_routes

TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "token", "user_id"}


def basic(username, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_json_credentials(client, add_user):
    user_id = add_user("alice")
    response = client.post("/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json) == TOKEN_FIELDS
    assert response.json["token_type"] == "Bearer"
    assert response.json["expires_in"] == 900
    assert response.json["token"] == response.json["access_token"]
    assert response.json["user_id"] == user_id
    assert response.headers["Cache-Control"] == "no-store"


def test_form_credentials(client, add_user):
    add_user("alice")
    response = client.post("/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json) == TOKEN_FIELDS


def test_form_without_grant_type_means_password(client, add_user):
    add_user("alice")
    assert client.post("/token", data={"username": "alice", "password": PASSWORD}).status_code == 200


def test_basic_credentials(client, add_user):
    add_user("alice")
    response = client.post("/token", headers=basic("alice", PASSWORD))
    assert response.status_code == 200
    assert set(response.json) == TOKEN_FIELDS


def test_body_credentials_win_over_basic(client, add_user):
    add_user("alice")
    right_body = client.post(
        "/token", json={"username": "alice", "password": PASSWORD}, headers=basic("swagger-client", "")
    )
    assert right_body.status_code == 200
    wrong_body = client.post(
        "/token", json={"username": "alice", "password": "wrong!"}, headers=basic("alice", PASSWORD)
    )
    assert wrong_body.status_code == 401


def test_oauth_extras_are_ignored(client, add_user):
    add_user("alice")
    form = {"username": "alice", "password": PASSWORD, "scope": "", "client_id": "docs", "client_secret": "x"}
    assert client.post("/token", data=form).status_code == 200


def test_unknown_fields_are_refused(client, add_user):
    add_user("alice")
    response = client.post("/token", json={"username": "alice", "password": PASSWORD, "remember": True})
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"remember"}


def test_login_ignores_username_case(client, add_user):
    user_id = add_user("Alice")
    response = client.post("/token", json={"username": "aLICE", "password": PASSWORD})
    assert response.json["user_id"] == user_id


def test_claims(client, add_user):
    user_id = add_user("alice")
    tokens = client.post("/token", json={"username": "alice", "password": PASSWORD}).json
    access, refresh = claims_of(tokens["access_token"]), claims_of(tokens["refresh_token"])
    assert set(access) == {"sub", "iat", "nbf", "exp", "jti", "type", "fresh", "role", "sid"}
    assert access["sub"] == str(user_id)
    assert access["type"] == "access" and access["fresh"] is True and access["role"] == "user"
    assert access["exp"] - access["iat"] == 900
    assert refresh["type"] == "refresh" and refresh["sid"] == access["sid"]
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600
    assert refresh["jti"] != access["jti"]


def test_each_login_is_a_new_session(client, add_user, login):
    add_user("alice")
    assert claims_of(login()["access_token"])["sid"] != claims_of(login()["access_token"])["sid"]


def test_issuer_and_audience_when_configured(make_app, add_user):
    add_user("alice")
    app = make_app(JWT_ISSUER="https://auth.example.com", JWT_AUDIENCE="example-api")
    token = app.test_client().post("/token", json={"username": "alice", "password": PASSWORD}).json["access_token"]
    assert claims_of(token)["iss"] == "https://auth.example.com"
    assert claims_of(token)["aud"] == "example-api"


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "ALİCE", "password": PASSWORD},  # not ASCII: never matches
    ],
)
def test_wrong_credentials_are_a_401(client, add_user, credentials):
    add_user("alice")
    response = client.post("/token", json=credentials)
    assert response.status_code == 401
    assert response.json == {"error": "invalid_credentials", "message": "Wrong username or password."}


def test_an_inactive_user_gets_the_same_answer(client, add_user):
    add_user("alice", is_active=False)
    response = client.post("/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_credentials"


class CountingHasher:
    def __init__(self, real):
        self.real, self.verified = real, 0

    def verify(self, *args):
        self.verified += 1
        return self.real.verify(*args)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_an_unknown_username_costs_a_real_hash_check(client, monkeypatch):
    hasher = CountingHasher(passwords.HASHER)
    monkeypatch.setattr(passwords, "HASHER", hasher)
    client.post("/token", json={"username": "nobody", "password": PASSWORD})
    assert hasher.verified == 1


@pytest.mark.parametrize("method", ["pbkdf2:sha256:600000", "scrypt"])
def test_a_werkzeug_hash_logs_in_and_is_rehashed(client, add_user, app, method):
    add_user("legacy", password_hash=generate_password_hash("seed password 1", method=method))
    assert client.post("/token", json={"username": "legacy", "password": "seed password 1"}).status_code == 200
    with app.app_context():
        stored = db.session.execute(db.select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert client.post("/token", json={"username": "legacy", "password": "seed password 1"}).status_code == 200


def test_a_failed_legacy_login_keeps_the_old_hash(client, add_user, app):
    old = generate_password_hash("seed password 1")
    add_user("legacy", password_hash=old)
    assert client.post("/token", json={"username": "legacy", "password": "nope"}).status_code == 401
    with app.app_context():
        assert db.session.execute(db.select(User.password_hash)).scalar_one() == old


@pytest.mark.parametrize(
    "body",
    [{"username": "alice"}, {"password": PASSWORD}, {}],
)
def test_missing_credentials_are_a_400(client, body):
    response = client.post("/token", json=body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.json["fields"]


def test_no_body_and_no_basic_is_a_400(client):
    response = client.post("/token")
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"username", "password"}


@pytest.mark.parametrize("grant_type", ["client_credentials", "authorization_code", ""])
def test_unknown_grant_type(client, grant_type):
    response = client.post("/token", data={"grant_type": grant_type, "username": "a", "password": "b"})
    assert response.status_code == 400
    assert response.json["error"] == "unsupported_grant_type"


def test_other_media_types_are_a_415(client):
    response = client.post("/token", data="<xml/>", content_type="application/xml")
    assert response.status_code == 415


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": {"username": "al\u0000ice", "password": PASSWORD}},
        {"data": {"username": "al\u0000ice", "password": PASSWORD}},
        {"headers": basic("al\u0000ice", PASSWORD)},
    ],
    ids=["json", "form", "basic"],
)
def test_a_nul_in_the_username_is_a_401_not_a_500(client, add_user, request_kwargs):
    add_user("alice")
    assert client.post("/token", **request_kwargs).status_code == 401


def slow_first_check(monkeypatch, seconds=0.5):
    """Make the first password check of a login take `seconds` longer, as a slow legacy hash would."""
    real = users_module.verify_password
    calls = []

    def slow(*args):
        result = real(*args)
        if not calls:
            calls.append(1)
            time.sleep(seconds)
        return result

    monkeypatch.setattr(users_module, "verify_password", slow)


@pytest.mark.parametrize("change", ["admin_reset", "deactivate"])
def test_a_change_made_while_a_login_hashes_wins(app, add_user, login, monkeypatch, change):
    add_user("root", role="admin")
    admin_headers = bearer(login("root")["access_token"])
    alice_id = add_user("alice", password_hash=generate_password_hash(PASSWORD))  # legacy: re-hashed at login
    slow_first_check(monkeypatch)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(app.test_client().post, "/token", json={"username": "alice", "password": PASSWORD})
        time.sleep(0.15)  # the login is checking the old password now
        body = {"password": "the new passphrase"} if change == "admin_reset" else {"is_active": False}
        assert app.test_client().patch(f"/users/{alice_id}", json=body, headers=admin_headers).status_code == 200
        login_response = pending.result()
    assert login_response.status_code == 401
    client = app.test_client()
    assert client.post("/token", json={"username": "alice", "password": PASSWORD}).status_code == 401
    if change == "admin_reset":
        assert client.post("/token", json={"username": "alice", "password": "the new passphrase"}).status_code == 200


def test_a_login_in_progress_cannot_outlive_a_later_password_change(app, alice, monkeypatch):
    """A change that starts after the login re-read the row waits, then ends the new session."""
    real_start = token_routes.start_session

    def slow_start(**kwargs):
        login_session = real_start(**kwargs)
        time.sleep(0.5)  # the row is locked; the password change below must wait for this commit
        return login_session

    monkeypatch.setattr(token_routes, "start_session", slow_start)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(app.test_client().post, "/token", json={"username": "alice", "password": PASSWORD})
        time.sleep(0.2)
        change = app.test_client().post(
            "/me/password",
            json={"current_password": PASSWORD, "new_password": "the new passphrase"},
            headers=alice["headers"],
        )
        new_login = pending.result()
    assert change.status_code == 204
    assert new_login.status_code == 200
    assert app.test_client().get("/me", headers=bearer(new_login.json["access_token"])).status_code == 401
