"""A second factor: enrolment, logins with a code or a recovery code, replays, turning it off, an admin's removal."""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import PASSWORD, WRONG_PASSWORD, assert_error, assert_refused, basic, claims_of, steady_step, totp_code
from sqlalchemy import func, select, update

from tokenservice.rules import second_factor
from tokenservice.storage.models import LoginFailure, RecoveryCode, User


@pytest.fixture
def enrolled(auth):
    """alice, logged in, with a factor confirmed by the code of the step before now: (secret, recovery codes, login)."""
    auth.add_user("alice")
    login = auth.login("alice")
    secret, codes = auth.enrol(login, step_offset=-1)
    return secret, codes, login


def test_enrolment_gives_a_secret_uri_and_qr_code_and_turns_on_once_confirmed(client, auth):
    auth.add_user("alice")
    login = auth.login("alice")
    started = client.post("/me/mfa/totp", headers=login.headers)
    assert started.status_code == 200 and started.headers["Cache-Control"] == "no-store"
    secret, uri = started.json["secret"], started.json["uri"]
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("otpauth", "totp", "/tokenservice:alice")
    assert parse_qs(parts.query) == {"secret": [secret], "issuer": ["tokenservice"]}
    assert started.json["qr_svg"].startswith("<svg") and "<script" not in started.json["qr_svg"]
    assert client.get("/me", headers=login.headers).json["mfa"] is False  # not on until confirmed
    # Not on yet: logins need no code.
    assert auth.token("alice").status_code == 200

    wrong = client.post("/me/mfa/totp/confirm", json={"code": "000000"}, headers=login.headers)
    assert_error(wrong, 400, "invalid_request")
    assert wrong.json["fields"] == {"code": "Wrong or already used."}

    code = totp_code(secret, steady_step())
    confirmed = client.post("/me/mfa/totp/confirm", json={"code": code}, headers=login.headers)
    assert confirmed.status_code == 200 and confirmed.headers["Cache-Control"] == "no-store"
    codes = confirmed.json["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert client.get("/me", headers=login.headers).json["mfa"] is True
    again = client.post("/me/mfa/totp/confirm", json={"code": code}, headers=login.headers)
    assert_error(again, 409, "mfa_already_enabled")
    assert_error(client.post("/me/mfa/totp", headers=login.headers), 409, "mfa_already_enabled")


def test_recovery_codes_are_stored_only_as_hashes(enrolled, database):
    _, codes, _ = enrolled
    stored = database.scalars(select(RecoveryCode.code_hash))
    assert len(stored) == 10
    assert not any(code.replace("-", "").encode() in digest for digest in stored for code in codes)


def test_a_login_with_the_right_password_needs_the_code(enrolled, auth):
    response = auth.token("alice")
    assert_error(response, 401, "mfa_required")
    assert "access_token" not in response.json


def test_codes_within_one_step_of_drift_each_once_and_never_an_older_one(enrolled, auth):
    secret, _, _ = enrolled  # confirmed with the step before now
    step = steady_step()
    login = auth.login("alice", otp=totp_code(secret, step))
    assert claims_of(login.access_token)["amr"] == ["pwd", "otp"]
    assert claims_of(login.refresh_token)["amr"] == ["pwd", "otp"]
    assert_error(auth.token("alice", otp=totp_code(secret, step)), 401, "invalid_otp")  # a replay
    assert_error(auth.token("alice", otp=totp_code(secret, step - 1)), 401, "invalid_otp")  # older than one used
    assert_error(auth.token("alice", otp=totp_code(secret, step + 2)), 401, "invalid_otp")  # two steps ahead
    auth.login("alice", otp=totp_code(secret, step + 1))  # one step ahead: a clock a little fast
    assert_error(auth.token("alice", otp=totp_code(secret, step + 1)), 401, "invalid_otp")


def test_a_code_one_step_late_is_accepted_two_are_not(enrolled, auth, database):
    secret, _, _ = enrolled
    step = steady_step()
    database.execute(update(User).values(totp_last_step=step - 10))  # its last code was used minutes ago
    assert_error(auth.token("alice", otp=totp_code(secret, step - 2)), 401, "invalid_otp")
    auth.login("alice", otp=totp_code(secret, step - 1))  # a clock a little slow


def test_the_code_as_a_form_and_with_http_basic(enrolled, client):
    secret, codes, _ = enrolled
    step = steady_step()
    form = {"username": "alice", "password": PASSWORD, "otp": totp_code(secret, step)}
    assert client.post("/token", data=form).status_code == 200
    with_basic = client.post("/token", headers={**basic("alice", PASSWORD), "X-OTP": totp_code(secret, step + 1)})
    assert with_basic.status_code == 200
    assert_error(client.post("/token", headers=basic("alice", PASSWORD)), 401, "mfa_required")
    recovery = client.post("/token", headers={**basic("alice", PASSWORD), "X-Recovery-Code": codes[0]})
    assert recovery.status_code == 200


def test_a_recovery_code_works_once_typed_any_way(enrolled, auth, database):
    _, codes, _ = enrolled
    login = auth.login("alice", recovery_code=codes[0])
    assert login.claims["amr"] == ["pwd", "otp"]
    assert_error(auth.token("alice", recovery_code=codes[0]), 401, "invalid_otp")
    auth.login("alice", recovery_code=codes[1].upper().replace("-", " "))
    assert database.scalar(select(RecoveryCode.id).where(RecoveryCode.used_at.is_(None)).limit(1)) is not None
    assert_error(auth.token("alice", recovery_code="not-a-code"), 401, "invalid_otp")


def test_ten_concurrent_uses_of_one_recovery_code_one_wins(enrolled, app):
    _, codes, _ = enrolled
    body = {"username": "alice", "password": PASSWORD, "recovery_code": codes[0]}

    def attempt(_):
        response = app.test_client().post("/token", json=body)
        return response.status_code, response.json["error"] if response.status_code != 200 else None

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(attempt, range(10)))
    assert sorted(outcomes, key=str) == [(200, None)] + [(401, "invalid_otp")] * 9


def test_wrong_codes_count_as_failed_logins(limited_app, auth_for):
    app = limited_app({"LOGIN_FAILURE_LIMIT": "3 per minute"})
    auth = auth_for(app)
    auth.add_user("alice")
    secret, _ = auth.enrol(auth.login("alice"))
    for _ in range(3):
        assert_error(auth.token("alice", otp="000000"), 401, "invalid_otp")
    # The limit is spent: even the right code is refused now, before the password is checked.
    assert_error(auth.token("alice", otp=totp_code(secret, steady_step() + 1)), 429, "rate_limited")


def test_a_right_password_without_the_code_is_no_failed_login(limited_app, auth_for):
    app = limited_app({"LOGIN_FAILURE_LIMIT": "3 per minute"})
    auth = auth_for(app)
    auth.add_user("alice")
    secret, _ = auth.enrol(auth.login("alice"))
    for _ in range(5):
        assert_error(auth.token("alice"), 401, "mfa_required")
    auth.login("alice", otp=totp_code(secret, steady_step() + 1))


def test_a_wrong_password_tells_nothing_of_the_factor(enrolled, auth, client):
    """The same answer for a user with a factor as for one without, and the same time within noise.

    The factor is looked at only after the password matched; a wrong
    password for either user costs one Argon2id check and nothing more.
    Their times are compared side by side, interleaved, by their medians,
    with bounds loose enough for a noisy machine (a leak that checked the
    factor first, or hashed twice, would be far outside them).
    """
    auth.add_user("bob")
    answers = {}
    times = {"alice": [], "bob": []}
    for _ in range(12):
        for username in ("alice", "bob"):
            started = time.perf_counter()
            response = auth.token(username, WRONG_PASSWORD)
            times[username].append(time.perf_counter() - started)
            answers[username] = (response.status_code, response.json)
    assert answers["alice"] == answers["bob"] == (401, answers["bob"][1])
    assert answers["bob"][1]["error"] == "invalid_credentials"
    ratio = statistics.median(times["alice"]) / statistics.median(times["bob"])
    assert 0.6 < ratio < 1.6, times


def test_turning_it_off_needs_the_password_and_a_code(enrolled, client, auth, database):
    secret, codes, login = enrolled
    wrong_password = client.delete(
        "/me/mfa/totp", json={"password": WRONG_PASSWORD, "code": codes[0]}, headers=login.headers
    )
    assert_error(wrong_password, 400, "invalid_request")
    assert wrong_password.json["fields"] == {"password": "Wrong password."}
    wrong_code = client.delete("/me/mfa/totp", json={"password": PASSWORD, "code": "123456"}, headers=login.headers)
    assert_error(wrong_code, 400, "invalid_request")
    assert wrong_code.json["fields"] == {"code": "Wrong or already used."}
    assert client.get("/me", headers=login.headers).json["mfa"] is True

    turned_off = client.delete("/me/mfa/totp", json={"password": PASSWORD, "code": codes[0]}, headers=login.headers)
    assert turned_off.status_code == 204
    assert client.get("/me", headers=login.headers).json["mfa"] is False
    assert database.scalars(select(RecoveryCode.id)) == []
    assert database.scalar(select(User.totp_secret)) is None
    assert auth.login("alice").claims["amr"] == ["pwd"]
    again = client.delete("/me/mfa/totp", json={"password": PASSWORD, "code": codes[1]}, headers=login.headers)
    assert_error(again, 409, "mfa_not_enabled")


def test_enrolment_needs_a_token_from_a_login_not_a_refresh(client, auth, alice):
    refreshed = auth.refresh(alice.refresh_token).json["access_token"]
    response = client.post("/me/mfa/totp", headers={"Authorization": f"Bearer {refreshed}"})
    assert_error(response, 403, "fresh_login_required")


def test_new_recovery_codes_need_a_session_that_used_the_factor(enrolled, client, auth):
    secret, codes, password_only = enrolled  # logged in before the factor was on: amr pwd
    assert_error(client.post("/me/mfa/recovery-codes", headers=password_only.headers), 403, "second_factor_required")
    with_code = auth.login("alice", otp=totp_code(secret, steady_step()))
    renewed = client.post("/me/mfa/recovery-codes", headers=with_code.headers)
    assert renewed.status_code == 200 and len(renewed.json["recovery_codes"]) == 10
    assert_error(auth.token("alice", recovery_code=codes[2]), 401, "invalid_otp")  # the old ones stopped
    auth.login("alice", recovery_code=renewed.json["recovery_codes"][0])


def test_an_admin_removes_a_factor_and_the_users_sessions_end(enrolled, client, admin, auth):
    _, _, login = enrolled
    user_id = login.claims["sub"]
    assert client.get(f"/users/{user_id}", headers=admin.headers).json["mfa"] is True
    assert client.delete(f"/users/{user_id}/mfa", headers=admin.headers).status_code == 204
    assert_refused(client.get("/me", headers=login.headers))
    assert client.get(f"/users/{user_id}", headers=admin.headers).json["mfa"] is False
    assert auth.login("alice").claims["amr"] == ["pwd"]
    assert_error(client.delete(f"/users/{user_id}/mfa", headers=admin.headers), 409, "mfa_not_enabled")
    assert_error(client.delete("/users/999999/mfa", headers=admin.headers), 404, "not_found")


def test_the_cli_removes_a_factor(enrolled, runner, auth):
    result = runner.invoke(args=["users", "remove-mfa", "alice"])
    assert result.exit_code == 0 and "Removed the second factor of 'alice'" in result.output
    auth.login("alice")
    again = runner.invoke(args=["users", "remove-mfa", "alice"])
    assert again.exit_code == 1 and "has no second factor" in again.output


def test_without_mfa_key_no_factor_is_offered(make_app, auth_for):
    app = make_app(MFA_KEY=None)
    auth = auth_for(app)
    auth.add_user("alice")
    login = auth.login("alice")
    assert_error(app.test_client().post("/me/mfa/totp", headers=login.headers), 503, "mfa_unavailable")


def test_a_secret_copied_onto_another_row_does_not_open(enrolled, auth, database):
    secret, _, _ = enrolled
    auth.add_user("bob")
    sealed = database.scalar(select(User.totp_secret).where(User.username == "alice"))
    database.execute(
        update(User).where(User.username == "bob").values(totp_secret=sealed, totp_enabled_at=User.created_at)
    )
    assert_error(auth.token("bob", otp=totp_code(secret, steady_step())), 503, "mfa_unavailable")


def test_the_notices_of_a_factor_turned_on_and_removed(outbox, admin, auth_for):
    auth = auth_for(outbox.app)
    user_id = auth.add_user("alice", email="alice@example.com", email_verified=True)
    auth.enrol(auth.login("alice"))
    admin_client = outbox.app.test_client()
    assert admin_client.delete(f"/users/{user_id}/mfa", headers=admin.headers).status_code == 204
    outbox.send()
    subjects = [mail["Subject"] for mail in outbox.mailbox.wait_for(2)]
    assert subjects == ["A second factor was turned on", "Your second factor was removed"]


def test_wrong_codes_turning_it_off_count_against_the_session(limited_app, auth_for):
    app = limited_app({"LOGIN_FAILURE_LIMIT": "2 per minute"})
    auth = auth_for(app)
    auth.add_user("alice")
    login = auth.login("alice")
    _, codes = auth.enrol(login)
    wrong = {"password": PASSWORD, "code": "000000"}
    for _ in range(2):
        assert_error(auth.client.delete("/me/mfa/totp", json=wrong, headers=login.headers), 400, "invalid_request")
    # The limit is spent: even a right code is refused now, before the password is checked.
    right = {"password": PASSWORD, "code": codes[0]}
    assert_error(auth.client.delete("/me/mfa/totp", json=right, headers=login.headers), 429, "rate_limited")


def test_an_overlong_code_is_a_400(enrolled, client, auth):
    assert_error(auth.token("alice", otp="1" * 11), 400, "invalid_request")
    overlong = client.post("/token", headers={**basic("alice", PASSWORD), "X-OTP": "1" * 11})
    assert_error(overlong, 400, "invalid_request")
    assert overlong.json["fields"] == {"otp": "Too long."}


def test_new_recovery_codes_need_a_fresh_login_with_the_code(enrolled, client, auth):
    secret, _, _ = enrolled
    with_code = auth.login("alice", otp=totp_code(secret, steady_step()))
    refreshed = auth.refresh(with_code.refresh_token).json["access_token"]
    assert claims_of(refreshed)["amr"] == ["pwd", "otp"]  # the session's, kept
    response = client.post("/me/mfa/recovery-codes", headers={"Authorization": f"Bearer {refreshed}"})
    assert_error(response, 403, "fresh_login_required")


def test_a_code_typed_with_a_space(enrolled, auth):
    secret, _, _ = enrolled
    code = totp_code(secret, steady_step())
    auth.login("alice", otp=f"{code[:3]} {code[3:]}")


def test_a_login_refused_for_an_unverified_address_uses_no_code(make_app, auth_for, database):
    auth = auth_for(make_app(REQUIRE_VERIFIED_EMAIL="true"))
    auth.add_user("alice", email="alice@example.com", email_verified=True)
    secret, _ = auth.enrol(auth.login("alice"), step_offset=-1)
    database.execute(update(User).values(email_verified=False))
    code = totp_code(secret, steady_step())
    assert_error(auth.token("alice", otp=code), 403, "email_not_verified")
    database.execute(update(User).values(email_verified=True))
    auth.login("alice", otp=code)  # not used up by the refused login


def test_a_factor_that_cannot_be_opened_counts_no_failed_login(limited_app, auth_for, database):
    auth = auth_for(limited_app({"LOGIN_FAILURE_LIMIT": "1 per minute"}))
    auth.add_user("alice")
    secret, _ = auth.enrol(auth.login("alice"))
    database.execute(update(User).values(totp_secret=b"\0" * 60))  # sealed under no key of ours
    for _ in range(2):
        assert_error(auth.token("alice", otp=totp_code(secret, steady_step())), 503, "mfa_unavailable")
    assert database.scalar(select(func.count()).select_from(LoginFailure)) == 0


def test_the_start_check_counts_factors_that_are_on(make_app, auth_for, database):
    app = make_app()
    auth = auth_for(app)
    auth.add_user("alice")
    login = auth.login("alice")
    assert auth.client.post("/me/mfa/totp", headers=login.headers).status_code == 200  # never confirmed
    assert second_factor.key_problem(app) is None
    assert second_factor.key_problem(make_app(MFA_KEY=None)) is None
    auth.enrol(auth.login("alice"))
    assert second_factor.key_problem(app) is None
    assert "MFA_KEY is required" in second_factor.key_problem(make_app(MFA_KEY=None))
    other = make_app(MFA_KEY="another-key-that-is-long-enough-but-not-theirs")
    assert "does not open" in second_factor.key_problem(other)


def test_the_cli_clears_an_enrolment_never_confirmed(client, auth, runner, database):
    auth.add_user("alice")
    login = auth.login("alice")
    assert client.post("/me/mfa/totp", headers=login.headers).status_code == 200
    assert runner.invoke(args=["users", "remove-mfa", "alice"]).exit_code == 0
    assert database.scalar(select(User.totp_secret)) is None
