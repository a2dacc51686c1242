"""Mail from the served app (gunicorn, the Procfile's workers, each with its sender) to a real SMTP server.

Account recovery end to end; a mail server that is down holds no request
and loses no mail; two instances of two workers send each mail once.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from deployment import deploy_env, exchange, login, procfile, run, schema_url, web_server
from helpers import PASSWORD, bearer, wait_for
from smtp_server import Mailbox, token_in
from sqlalchemy import text

from tokenservice.rules.passwords import hash_password
from tokenservice.storage.extensions import db

NEW_PASSWORD = "a new and long passphrase"


@pytest.fixture
def mailbox():
    box = Mailbox().start()
    yield box
    box.stop()


def mail_env(url: str, mailbox: Mailbox, **changes) -> dict:
    return deploy_env(
        url,
        SMTP_URL=mailbox.smtp_url,
        MAIL_FROM="tokenservice <no-reply@tokenservice.test>",
        PUBLIC_URL="http://127.0.0.1:5000",
        TOKEN_RATE_LIMIT="1000 per minute",
        **changes,
    )


def released(env: dict) -> None:
    assert run(procfile()["release"], env).returncode == 0


def me(port: int, token: str) -> int:
    return exchange(port, "GET", "/me", headers=bearer(token))[0]


def subject(mailbox, title: str):
    """The first mail with this subject, once it has arrived."""
    wait_for(lambda: any(mail["Subject"] == title for mail in mailbox.messages()))
    return next(mail for mail in mailbox.messages() if mail["Subject"] == title)


def test_a_user_recovers_their_account_by_mail(app, database_url, mailbox):
    url = schema_url(app, database_url, "mail_recovery")
    env = mail_env(url, mailbox)
    released(env)
    with web_server(env) as (port, _):
        body = {"username": "alice", "password": PASSWORD, "email": "alice@example.com"}
        assert exchange(port, "POST", "/users", body)[0] == 201
        (verification,) = mailbox.wait_for(1, to="alice@example.com")
        assert exchange(port, "POST", "/email/verify", {"token": token_in(verification)})[0] == 204

        sessions = [login(port) for _ in range(4)]
        assert all(me(port, session["access_token"]) == 200 for session in sessions)  # both workers remember them
        assert exchange(port, "POST", "/password/forgot", {"email": "alice@example.com"})[0] == 202
        # Each of the four logins came from a new device: sign-in alerts came too.
        reset_mail = subject(mailbox, "Reset your password")
        reset = {"token": token_in(reset_mail), "new_password": NEW_PASSWORD}
        assert exchange(port, "POST", "/password/reset", reset)[0] == 204
        ended = time.monotonic()
        # Every old token refused within a second, on whichever worker answers (each request a new connection).
        while time.monotonic() - ended < 1:
            if all(me(port, session["access_token"]) == 401 for session in sessions):
                break
        assert time.monotonic() - ended < 1
        for _ in range(10):
            assert all(me(port, session["access_token"]) == 401 for session in sessions)
        login(port, password=NEW_PASSWORD)
        assert subject(mailbox, "Your password was changed")["To"] == "alice@example.com"


def test_a_mail_server_that_is_down_holds_no_request_and_loses_no_mail(app, database_url, mailbox):
    url = schema_url(app, database_url, "mail_outage")
    env = mail_env(url, mailbox)
    released(env)
    with web_server(env) as (port, _):
        mailbox.stop()
        started = time.monotonic()
        body = {"username": "alice", "password": PASSWORD, "email": "alice@example.com"}
        assert exchange(port, "POST", "/users", body)[0] == 201
        assert time.monotonic() - started < 2  # a hash and a commit; no mail server in the way
        time.sleep(2)  # the sender tries, and backs off
        mailbox.start()
        (mail,) = mailbox.wait_for(1, timeout=30)
        assert mail["Subject"] == "Confirm your e-mail address"
        time.sleep(1)
        assert len(mailbox.messages()) == 1


def test_two_instances_of_two_workers_send_each_of_fifty_mails_once(app, database_url, mailbox):
    url = schema_url(app, database_url, "mail_instances")
    env = mail_env(url, mailbox)
    released(env)
    # Fifty users with verified addresses, written as an admin would with SQL (no verification mails to count).
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO mail_instances.users (username, password_hash, email, email_verified) "
                "SELECT 'user' || n, :hash, 'user' || n || '@example.com', true FROM generate_series(0, 49) AS n"
            ),
            {"hash": hash_password(PASSWORD)},
        )
        db.session.commit()
    first, second = mail_env(url, mailbox), mail_env(url, mailbox)
    with web_server(first) as (a, _), web_server(second) as (b, _):
        start = threading.Barrier(50)

        def forgot(index):
            start.wait()
            port = (a, b)[index % 2]
            return exchange(port, "POST", "/password/forgot", {"username": f"user{index}"})[0]

        with ThreadPoolExecutor(50) as pool:
            assert set(pool.map(forgot, range(50))) == {202}
        mailbox.wait_for(50, timeout=60)
        time.sleep(3)  # any second sending would have come by now
        recipients = sorted(str(mail["To"]) for mail in mailbox.messages())
    assert recipients == sorted(f"user{index}@example.com" for index in range(50))


def test_without_a_mail_server_gunicorn_says_so_once_and_the_routes_say_why(app, database_url):
    url = schema_url(app, database_url, "mail_none")
    env = deploy_env(url, WEB_CONCURRENCY="2")
    released(env)
    with web_server(env) as (port, output):
        status, _, body = exchange(port, "POST", "/password/forgot", {"username": "alice"})
        assert (status, body["error"]) == (503, "mail_unavailable")
    assert output[0].count("No mail server") == 1
