"""Failed logins per username, from any address, worker or instance, counted in PostgreSQL."""

import functools
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PASSWORD, assert_error, assert_refused, basic, bearer, tampered
from helpers import WRONG_PASSWORD as WRONG
from sqlalchemy import func, select, update
from werkzeug.security import generate_password_hash

from tokenservice.rules import passwords
from tokenservice.storage.models import LoginFailure, User


@pytest.fixture
def throttled(limited_app):
    """An app allowing 3 failed logins per username per 15 minutes (and plenty per address)."""
    return functools.partial(
        limited_app, {"LOGIN_FAILURE_LIMIT": "3 per 15 minutes", "TOKEN_RATE_LIMIT": "1000 per minute"}
    )


def assert_throttled(response):
    assert_error(response, 429, "rate_limited")
    assert response.json["message"] == "Too many failed logins for this username; try again later."
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


def test_after_three_failures_even_the_right_password_waits(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    assert [auth.token(password=WRONG, client=client).status_code for _ in range(3)] == [401] * 3
    assert_throttled(auth.token(client=client))
    assert auth.token("bob", client=client).status_code == 401  # another username is not affected


def test_unknown_usernames_get_the_same_answer(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    for username in ("alice", "nobody"):
        for _ in range(3):
            auth.token(username, WRONG, client=client)
    known, unknown = auth.token("alice", WRONG, client=client), auth.token("nobody", WRONG, client=client)
    assert_throttled(known)
    assert_throttled(unknown)
    assert known.json == unknown.json


def test_only_failures_count(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    assert [auth.token(client=client).status_code for _ in range(5)] == [200] * 5
    auth.token(password=WRONG, client=client)
    assert auth.token(client=client).status_code == 200


def test_the_username_is_matched_without_regard_to_case(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    for name in ("ALICE", "Alice", "aLiCe"):
        auth.token(name, WRONG, client=client)
    assert_throttled(auth.token(client=client))


def test_from_a_thousand_addresses_it_is_one_username(throttled, auth):
    auth.add_user("alice")
    app = throttled(TRUSTED_PROXIES="1")
    statuses = []
    for i in range(5):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{i}"
        statuses.append(auth.token(password=WRONG, client=client).status_code)
    assert statuses == [401, 401, 401, 429, 429]


def change_password(client, session, current, new="a brand new passphrase"):
    body = {"current_password": current, "new_password": new}
    return client.post("/me/password", json=body, headers=session.headers)


def test_wrong_current_passwords_count_in_the_sessions_own_allowance(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    alice = auth.login(client=client)
    assert [change_password(client, alice, WRONG).status_code for _ in range(3)] == [400] * 3
    assert_throttled(change_password(client, alice, PASSWORD))  # a stolen token guesses slowly
    # Not the username's allowance: a login, and another session's change, still work.
    other = auth.login(client=client)
    assert change_password(client, other, PASSWORD).status_code == 204


def test_strangers_who_lock_a_username_do_not_stop_its_owner_changing_the_password(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    alice = auth.login(client=client)
    for _ in range(3):
        auth.token(password=WRONG, client=client)
    assert_throttled(auth.token(client=client))
    assert change_password(client, alice, PASSWORD).status_code == 204


def login_with_device(client, device_token, password=PASSWORD, username="alice"):
    body = {"username": username, "password": password, "device_token": device_token}
    return client.post("/token", json=body)


def test_a_strangers_guesses_lock_strangers_out_but_not_the_owners_device(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    device = auth.login(client=client).tokens["device_token"]
    for name in ("alice", "ALICE", "Alice"):  # strangers, in any letter case
        assert auth.token(name, WRONG, client=client).status_code == 401
    assert_throttled(auth.token(client=client))  # the right password, without the device token
    assert_throttled(client.post("/token", data={"username": "alice", "password": PASSWORD}))  # form
    assert_throttled(client.post("/token", headers=basic("alice", PASSWORD)))  # Basic
    answer = login_with_device(client, device)
    assert answer.status_code == 200
    assert answer.json["device_token"] == device  # the same device, recognised again
    assert login_with_device(client, device, username="ALICE").status_code == 200
    assert (
        client.post("/token", data={"username": "alice", "password": PASSWORD, "device_token": device}).status_code
        == 200
    )


def test_a_wrong_password_from_the_owners_device_counts_against_that_device_only(throttled, auth):
    auth.add_user("alice")
    client = throttled().test_client()
    device, other_device = (auth.login(client=client).tokens["device_token"] for _ in range(2))
    assert device != other_device  # each login without one is a new device
    assert [login_with_device(client, device, WRONG).status_code for _ in range(3)] == [401] * 3
    assert_throttled(login_with_device(client, device))
    assert login_with_device(client, other_device).status_code == 200
    assert auth.token(client=client).status_code == 200  # strangers' allowance untouched


@pytest.mark.parametrize("kind", ["tampered MAC", "another service's key", "garbage", "empty"])
def test_a_device_token_that_is_not_ours_counts_as_a_stranger(throttled, auth, kind):
    auth.add_user("alice")
    real = auth.login(client=throttled().test_client()).tokens["device_token"]
    elsewhere = throttled(JWT_SECRET_KEY="another-secret-that-is-also-long-enough-for-hs256").test_client()
    presented = {
        "tampered MAC": tampered(real),
        "another service's key": auth.login(client=elsewhere).tokens["device_token"],
        "garbage": "not a device token",
        "empty": "",
    }[kind]
    assert presented != real
    client = throttled().test_client()
    for _ in range(3):
        auth.token(password=WRONG, client=client)
    assert_throttled(login_with_device(client, presented))
    assert login_with_device(client, real).status_code == 200  # the real one, for contrast


def test_a_password_change_retires_every_device_token(throttled, auth):
    """Someone who once knew the password cannot keep a stock of device allowances to guess the new one."""
    auth.add_user("alice")
    client = throttled().test_client()
    stock = [auth.login(client=client).tokens["device_token"] for _ in range(2)]
    session = auth.login(client=client)
    body = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    assert client.post("/me/password", json=body, headers=session.headers).status_code == 204
    for _ in range(3):
        auth.token(password=WRONG, client=client)
    for device in stock:
        assert_throttled(login_with_device(client, device, "a brand new passphrase"))


def test_another_users_device_token_counts_as_a_stranger(throttled, auth):
    auth.add_user("alice")
    auth.add_user("mallory")
    client = throttled().test_client()
    mallorys_device = auth.login("mallory", client=client).tokens["device_token"]
    assert [login_with_device(client, mallorys_device, WRONG).status_code for _ in range(3)] == [401] * 3
    assert_throttled(login_with_device(client, mallorys_device))  # alice's strangers' allowance is spent
    assert_throttled(auth.token(client=client))
    answer = login_with_device(client, mallorys_device, username="mallory")
    assert answer.status_code == 200  # mallory's own device was never touched


def test_a_device_token_is_no_credential(client, auth, alice):
    device = alice.tokens["device_token"]
    for path in ("/me", "/protected"):
        assert_refused(client.get(path, headers=bearer(device)))
    assert_refused(client.post("/token/refresh", headers=bearer(device)))
    assert_error(login_with_device(client, device, WRONG), 401, "invalid_credentials")
    assert_error(client.post("/token", json={"device_token": device}), 400, "invalid_request")


def test_a_refresh_answers_with_no_device_token(auth, alice):
    assert "device_token" not in auth.refresh(alice.refresh_token).json


def test_an_admin_unlocks_a_username(throttled, auth):
    auth.add_user("alice")
    app = throttled()
    client = app.test_client()
    device = auth.login(client=client).tokens["device_token"]
    for _ in range(3):
        auth.token(password=WRONG, client=client)
        login_with_device(client, device, WRONG)
    assert_throttled(auth.token(client=client))
    result = app.test_cli_runner().invoke(args=["users", "unlock", "Alice"])
    assert result.exit_code == 0, result.output
    assert result.output == "Cleared 6 failed login(s) of 'Alice'.\n"
    assert auth.token(client=client).status_code == 200
    assert login_with_device(client, device).status_code == 200


def test_the_failures_pass_with_the_window(throttled, auth, database):
    auth.add_user("alice")
    client = throttled().test_client()
    for _ in range(3):
        auth.token(password=WRONG, client=client)
    assert_throttled(auth.token(client=client))
    fifteen_minutes_ago = func.now() - func.make_interval(0, 0, 0, 0, 0, 15)
    assert database.execute(update(LoginFailure).values(failed_at=fifteen_minutes_ago)) == 3  # the 429 added none
    assert auth.token(client=client).status_code == 200


def test_usernames_are_kept_only_as_digests(throttled, auth, database):
    client = throttled().test_client()
    auth.token("Mallory", "my real password, typed in the wrong place", client=client)
    assert database.scalars(select(LoginFailure.username_key)) == [hashlib.sha256(b"mallory").digest()]


def test_purge_deletes_the_failures_that_no_longer_count(throttled, auth, database):
    app = throttled()
    client = app.test_client()
    for name in ("old", "recent"):
        auth.token(name, WRONG, client=client)
    old = hashlib.sha256(b"old").digest()
    a_day_ago = func.now() - func.make_interval(0, 0, 0, 1)
    database.execute(update(LoginFailure).where(LoginFailure.username_key == old).values(failed_at=a_day_ago))
    result = app.test_cli_runner().invoke(args=["sessions", "purge"])
    assert "Deleted 1 failed logins" in result.output, result.output
    assert database.scalars(select(LoginFailure.username_key)) == [hashlib.sha256(b"recent").digest()]


def test_ten_guesses_at_once_on_two_instances_get_exactly_three_tries(throttled, auth):
    """The count is taken before the (slow) password check, under a lock: nobody slips past it."""
    auth.add_user("alice")
    apps = [throttled(), throttled()]
    barrier = threading.Barrier(10)

    def guess(index):
        client = apps[index % 2].test_client()
        barrier.wait()
        return auth.token(password=WRONG, client=client).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(guess, range(10)))
    assert statuses == [401] * 3 + [429] * 7


@pytest.mark.parametrize(("method", "tries"), [("pbkdf2", 2), ("scrypt", 3)])
def test_a_wrong_guess_at_a_legacy_hash_counts_as_the_work_it_took(limited_app, auth, method, tries):
    """LOGIN_FAILURE_LIMIT=10: a pbkdf2 check costs 8 Argon2id checks, scrypt 4.

    (No device token can name a legacy hash: the login that hands one out re-hashes the password.)
    """
    auth.add_user("legacy", password_hash=generate_password_hash(PASSWORD, method=method))
    client = limited_app(TOKEN_RATE_LIMIT="1000 per minute").test_client()
    statuses = [auth.token("legacy", WRONG, client=client).status_code for _ in range(tries + 1)]
    assert statuses == [401] * tries + [429]


def test_a_wrong_current_password_at_a_legacy_hash_counts_as_the_work_it_took(limited_app, auth, database):
    alice = auth.add_user("alice")
    client = limited_app(TOKEN_RATE_LIMIT="1000 per minute").test_client()
    session = auth.login(client=client)  # re-hashed at login: make it legacy again
    database.execute(update(User).where(User.id == alice).values(password_hash=generate_password_hash(PASSWORD)))
    body = {"current_password": WRONG, "new_password": "a brand new passphrase"}
    statuses = [client.post("/me/password", json=body, headers=session.headers).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]  # scrypt, Werkzeug's default: 4 each against LOGIN_FAILURE_LIMIT=10


def test_legacy_hashes_are_listed_and_can_be_expired(app, auth, database):
    legacy = auth.add_user("legacy", password_hash=generate_password_hash(PASSWORD, method="pbkdf2"))
    auth.add_user("modern")
    session = auth.login("legacy")  # re-hashed at login: make it legacy again, with a live session
    database.execute(update(User).where(User.id == legacy).values(password_hash=generate_password_hash(PASSWORD)))
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["users", "legacy-hashes"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [f"{legacy:>6}  legacy", "1 user(s) with a legacy password hash."]

    expired = runner.invoke(args=["users", "legacy-hashes", "--expire"])
    assert expired.exit_code == 0, expired.output
    assert "Expired the legacy password hashes of 1 user(s)" in expired.output
    assert auth.token("legacy").status_code == 401
    assert auth.client.get("/me", headers=session.headers).status_code == 401
    assert auth.token("modern").status_code == 200
    assert runner.invoke(args=["users", "legacy-hashes"]).output.endswith("0 user(s) with a legacy password hash.\n")
    assert runner.invoke(args=["users", "reset-password", "legacy", "--password", "a fresh passphrase"]).exit_code == 0
    assert auth.token("legacy", "a fresh passphrase").status_code == 200


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_a_login_whose_hash_waited_too_long_is_a_503_and_no_failure(throttled, auth, database, monkeypatch, username):
    """Under a flood, the hashing thread's turn comes too late: the password was never checked, so nothing counts."""
    auth.add_user("alice")
    monkeypatch.setattr(passwords, "under_gevent", lambda: True)  # hash in the worker's hashing thread
    monkeypatch.setattr(passwords, "HASH_WAIT_SECONDS", -1.0)  # every turn comes too late
    response = auth.token(username, client=throttled().test_client())
    assert_error(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert database.scalar(select(func.count()).select_from(LoginFailure)) == 0
