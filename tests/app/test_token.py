"""POST /token: the three credential forms, the response, the claims."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import (
    ACCESS_CLAIMS,
    LOGIN_FIELDS,
    PASSWORD,
    assert_error,
    basic,
    bearer,
    change_after_each_password_check,
    claims_of,
    record_argon2_checks,
)
from sqlalchemy import delete, func, select, update
from werkzeug.security import generate_password_hash

from tokenservice.rules import users as users_module
from tokenservice.rules.passwords import hash_password
from tokenservice.storage.extensions import db
from tokenservice.storage.models import LoginFailure, User
from tokenservice.web.routes import token as token_routes

LEGACY_PASSWORD = "legacy password 1"


def test_json_credentials(auth):
    user_id = auth.add_user("alice")
    response = auth.token()
    assert response.status_code == 200
    assert set(response.json) == LOGIN_FIELDS
    assert response.json["token_type"] == "Bearer"
    assert response.json["expires_in"] == 900
    assert response.json["token"] == response.json["access_token"]
    assert response.json["user_id"] == user_id
    assert response.headers["Cache-Control"] == "no-store"


def test_form_credentials(client, auth):
    auth.add_user("alice")
    response = client.post("/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json) == LOGIN_FIELDS


def test_form_without_grant_type_means_password(client, auth):
    auth.add_user("alice")
    assert client.post("/token", data={"username": "alice", "password": PASSWORD}).status_code == 200


def test_basic_credentials(client, auth):
    auth.add_user("alice")
    response = client.post("/token", headers=basic("alice", PASSWORD))
    assert response.status_code == 200
    assert set(response.json) == LOGIN_FIELDS


def test_body_credentials_win_over_basic(client, auth):
    auth.add_user("alice")
    right_body = client.post(
        "/token", json={"username": "alice", "password": PASSWORD}, headers=basic("swagger-client", "")
    )
    assert right_body.status_code == 200
    wrong_body = client.post(
        "/token", json={"username": "alice", "password": "wrong!"}, headers=basic("alice", PASSWORD)
    )
    assert wrong_body.status_code == 401


def test_oauth_extras_are_ignored(client, auth):
    auth.add_user("alice")
    form = {"username": "alice", "password": PASSWORD, "scope": "", "client_id": "docs", "client_secret": "x"}
    assert client.post("/token", data=form).status_code == 200


def test_unknown_fields_are_refused(client, auth):
    auth.add_user("alice")
    response = client.post("/token", json={"username": "alice", "password": PASSWORD, "remember": True})
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"remember"}


def test_login_ignores_username_case(auth):
    user_id = auth.add_user("Alice")
    assert auth.login("aLICE").id == user_id


def test_claims(auth):
    user_id = auth.add_user("alice")
    login = auth.login()
    access, refresh = login.claims, claims_of(login.refresh_token)
    assert set(access) == ACCESS_CLAIMS
    assert access["sub"] == str(user_id)
    assert access["type"] == "access" and access["fresh"] is True and access["role"] == "user"
    assert access["exp"] - access["iat"] == 900
    assert refresh["type"] == "refresh" and refresh["sid"] == access["sid"]
    assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600
    assert refresh["jti"] != access["jti"]


def test_each_login_is_a_new_session(auth):
    auth.add_user("alice")
    assert auth.login().claims["sid"] != auth.login().claims["sid"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "ALİCE", "password": PASSWORD},  # not ASCII: never matches
    ],
)
def test_wrong_credentials_are_a_401(auth, credentials):
    auth.add_user("alice")
    response = auth.token(**credentials)
    assert response.status_code == 401
    assert response.json == {"error": "invalid_credentials", "message": "Wrong username or password."}


def test_an_inactive_user_gets_the_same_answer(auth):
    auth.add_user("alice", is_active=False)
    assert_error(auth.token(), 401, "invalid_credentials")


def test_an_unknown_username_costs_a_real_hash_check(auth, monkeypatch):
    checked = record_argon2_checks(monkeypatch)
    auth.token("nobody")
    assert len(checked) == 1


@pytest.mark.parametrize("method", ["pbkdf2:sha256:600000", "scrypt"])
def test_a_werkzeug_hash_logs_in_and_is_rehashed(auth, database, method):
    auth.add_user("legacy", password_hash=generate_password_hash(LEGACY_PASSWORD, method=method))
    auth.login("legacy", LEGACY_PASSWORD)
    [stored] = database.scalars(db.select(User.password_hash))
    assert stored.startswith("$argon2id$")
    auth.login("legacy", LEGACY_PASSWORD)


def test_a_failed_legacy_login_keeps_the_old_hash(auth, database):
    old = generate_password_hash(LEGACY_PASSWORD)
    auth.add_user("legacy", password_hash=old)
    assert auth.token("legacy", "nope").status_code == 401
    assert database.scalars(db.select(User.password_hash)) == [old]


@pytest.mark.parametrize(
    "body",
    [{"username": "alice"}, {"password": PASSWORD}, {}],
)
def test_missing_credentials_are_a_400(client, body):
    response = client.post("/token", json=body)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.json["fields"]


def test_a_browser_forms_post_does_not_log_in_with_the_basic_header_the_browser_added(make_app, auth, database):
    """Behind a Basic-auth gate, the browser adds the gate's credentials to every request, form posts included."""
    auth.add_user("staff")
    client = make_app(RATELIMIT_ENABLED="true").test_client()  # failed logins are counted
    form = {"grant_type": "password"}
    navigation = {**basic("staff", PASSWORD), "Sec-Fetch-Mode": "navigate"}
    response = client.post("/token", data=form, headers=navigation)
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == {"username", "password"}
    assert database.scalar(select(func.count()).select_from(LoginFailure)) == 0  # the gate's user is no failed login
    # A script's (cors, same-origin) or curl's request (no Sec-Fetch-Mode) still logs in with Basic.
    for mode in ({"Sec-Fetch-Mode": "cors"}, {"Sec-Fetch-Mode": "same-origin"}, {}):
        assert client.post("/token", data=form, headers={**basic("staff", PASSWORD), **mode}).status_code == 200


def test_no_body_and_no_basic_is_a_400(client):
    response = client.post("/token")
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"username", "password"}


@pytest.mark.parametrize("grant_type", ["authorization_code", "implicit", ""])
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
def test_a_nul_in_the_username_is_a_401_not_a_500(client, auth, request_kwargs):
    auth.add_user("alice")
    assert client.post("/token", **request_kwargs).status_code == 401


# How long a race's signals are waited for before the test gives up.
SIGNAL_TIMEOUT = 10


def pause_after_the_first_check(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Hold the first password check of a login once it has returned, as a slow legacy hash would.

    Returns (checked, release): `checked` is set when the first check has
    returned; the login goes on once `release` is set.
    """
    real = users_module.verify_password
    checked, release = threading.Event(), threading.Event()

    def paused(*args):
        result = real(*args)
        if not checked.is_set():
            checked.set()
            assert release.wait(SIGNAL_TIMEOUT), "the test never let the login go on"
        return result

    monkeypatch.setattr(users_module, "verify_password", paused)
    return checked, release


@pytest.mark.parametrize("change", ["admin_reset", "deactivate"])
def test_a_change_made_while_a_login_hashes_wins(app, client, auth, admin, monkeypatch, change):
    alice_id = auth.add_user("alice", password_hash=generate_password_hash(PASSWORD))  # legacy: re-hashed at login
    checked, release = pause_after_the_first_check(monkeypatch)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(auth.token, client=app.test_client())
        try:
            assert checked.wait(SIGNAL_TIMEOUT), "the login never checked the password"
            # The login has checked the old password and not yet re-read the row.
            body = {"password": "the new passphrase"} if change == "admin_reset" else {"is_active": False}
            assert client.patch(f"/users/{alice_id}", json=body, headers=admin.headers).status_code == 200
        finally:
            release.set()
        login_response = pending.result()
    assert login_response.status_code == 401
    assert auth.token().status_code == 401
    if change == "admin_reset":
        auth.login(password="the new passphrase")


def test_a_login_in_progress_cannot_outlive_a_later_password_change(app, auth, alice, database, monkeypatch):
    """A change that starts after the login re-read the row waits, then ends the new session."""
    real_start = token_routes.start_session
    started, release = threading.Event(), threading.Event()

    def paused_start(**kwargs):
        login_session = real_start(**kwargs)
        started.set()  # the user's row is locked until this login commits
        assert release.wait(SIGNAL_TIMEOUT), "the test never let the login go on"
        return login_session

    monkeypatch.setattr(token_routes, "start_session", paused_start)
    password_change = {"current_password": PASSWORD, "new_password": "the new passphrase"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending_login = pool.submit(auth.token, client=app.test_client())
        try:
            assert started.wait(SIGNAL_TIMEOUT), "the login never started its session"
            pending_change = pool.submit(
                app.test_client().post, "/me/password", json=password_change, headers=alice.headers
            )
            database.wait_for_a_lock_waiter()  # the password change waits for the login's row lock
        finally:
            release.set()
        new_login = pending_login.result()
        change = pending_change.result()
    assert change.status_code == 204
    assert new_login.status_code == 200
    assert app.test_client().get("/me", headers=bearer(new_login.json["access_token"])).status_code == 401


def test_a_login_whose_hash_keeps_changing_is_told_to_try_again(make_app, auth, database, monkeypatch):
    """Each check sees a new hash of the same password (logins re-hashing it): after three, a 409, and no failure."""
    client = make_app(RATELIMIT_ENABLED="true").test_client()  # failed logins are counted
    alice_id = auth.add_user("alice")
    new_hashes = iter(hash_password(PASSWORD) for _ in range(3))
    change = update(User).where(User.id == alice_id)
    change_after_each_password_check(monkeypatch, database, lambda: change.values(password_hash=next(new_hashes)))
    assert_error(auth.token(client=client), 409, "conflict")
    assert database.scalar(select(func.count()).select_from(LoginFailure)) == 0  # the password was right


def test_a_user_deleted_while_a_password_is_checked(client, auth, alice, database, monkeypatch):
    """A login is a 401, a password change a 401 (the session went with the user), an admin's change a 404."""
    bob_id = auth.add_user("bob")
    change_after_each_password_check(monkeypatch, database, lambda: delete(User).where(User.id == alice.id))
    body = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    assert_error(client.post("/me/password", json=body, headers=alice.headers), 401, "invalid_token")
    change_after_each_password_check(monkeypatch, database, lambda: delete(User).where(User.id == bob_id))
    assert_error(auth.token("bob"), 401, "invalid_credentials")


def test_a_user_deleted_while_an_admin_sets_the_password(client, auth, admin, database, monkeypatch):
    bob_id = auth.add_user("bob")
    real = users_module.hash_password

    def hashed_then_deleted(password):
        result = real(password)
        database.execute(delete(User).where(User.id == bob_id))
        return result

    monkeypatch.setattr(users_module, "hash_password", hashed_then_deleted)
    response = client.patch(f"/users/{bob_id}", json={"password": "a brand new passphrase"}, headers=admin.headers)
    assert_error(response, 404, "not_found")
