"""Resetting a forgotten password by mail: the same answer whatever exists, a link that works once, sessions ended.

The mails go through the real outbox to a real SMTP server (smtp_server.py).
"""

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PASSWORD, assert_error, assert_refused, sql_statements
from smtp_server import Outbox, text_of, token_in
from sqlalchemy import update

from tokenservice.storage.models import LinkToken, OutboxItem

NEW_PASSWORD = "a new and long passphrase"
ACCEPTED = {"message": "If an account with a verified e-mail address matches, a reset link is on its way to it."}


@pytest.fixture
def verified(auth):
    """alice, whose address is verified."""
    auth.add_user("alice", email="alice@example.com", email_verified=True)


def forgot(client, **body):
    return client.post("/password/forgot", json=body)


def reset(client, token, password=NEW_PASSWORD):
    return client.post("/password/reset", json={"token": token, "new_password": password})


def reset_token(client, outbox, **body) -> str:
    assert forgot(client, **body).status_code == 202
    outbox.send()
    (mail,) = outbox.mailbox.wait_for(1)
    return token_in(mail)


def test_a_reset_by_mail_sets_the_password_once_and_ends_every_session(client, auth, outbox, verified):
    old = auth.login("alice")
    response = forgot(client, username="alice")
    assert response.status_code == 202 and response.json == ACCEPTED
    assert outbox.send()["requests"] == 1  # looked into after the answer
    (mail,) = outbox.mailbox.wait_for(1, to="alice@example.com")
    assert mail["Subject"] == "Reset your password" and "alice" not in str(mail["Subject"])

    assert reset(client, token_in(mail)).status_code == 204
    assert_refused(client.get("/me", headers=old.headers))
    assert auth.refresh(old.refresh_token).status_code == 401
    assert auth.token("alice", PASSWORD).status_code == 401
    auth.login("alice", NEW_PASSWORD)
    # The password-changed notice follows.
    outbox.send()
    notice = outbox.mailbox.wait_for(2)[1]
    assert notice["Subject"] == "Your password was changed"

    again = reset(client, token_in(mail), "yet another passphrase")
    assert_error(again, 400, "invalid_link")
    assert again.json["fields"] == {"token": "Invalid, expired or already used."}


def test_by_address_in_any_case(client, outbox, verified):
    token = reset_token(client, outbox, email="ALICE@Example.com")
    assert reset(client, token).status_code == 204


@pytest.mark.parametrize(
    "who",
    ["unknown username", "unknown address", "no address", "unverified address", "inactive"],
)
def test_everyone_gets_the_same_answer_and_only_a_real_account_a_mail(client, auth, outbox, verified, who):
    auth.add_user("bob")  # no address
    auth.add_user("carol", email="carol@example.com")  # not verified
    auth.add_user("dave", email="dave@example.com", email_verified=True, is_active=False)
    body = {
        "unknown username": {"username": "nobody"},
        "unknown address": {"email": "nobody@example.com"},
        "no address": {"username": "bob"},
        "unverified address": {"username": "carol"},
        "inactive": {"username": "dave"},
    }[who]
    known, other = forgot(client, username="alice"), forgot(client, **body)
    assert (other.status_code, other.json, other.headers.get("Content-Length")) == (
        known.status_code,
        known.json,
        known.headers.get("Content-Length"),
    )
    outbox.send()
    assert len(outbox.mailbox.wait_for(1)) == 1
    time.sleep(0.2)
    assert [mail["To"] for mail in outbox.mailbox.messages()] == ["alice@example.com"]


def test_the_answer_does_the_same_work_and_takes_the_same_time_whatever_exists(app, client, auth, verified):
    """The same SQL statements for an account and for nobody, and the same time within measurement (interleaved)."""
    with sql_statements(app) as statements:
        forgot(client, username="alice")
    known = list(statements)
    with sql_statements(app) as statements:
        forgot(client, username="nobody")
    assert list(statements) == known

    times = {"alice": [], "nobody": []}
    for _ in range(40):
        for username in times:
            started = time.perf_counter()
            assert forgot(client, username=username).status_code == 202
            times[username].append(time.perf_counter() - started)
    ratio = statistics.median(times["nobody"]) / statistics.median(times["alice"])
    assert 0.67 < ratio < 1.5, ratio


def test_a_token_is_for_one_purpose(client, auth, outbox):
    """A verification token cannot reset a password."""
    auth.add_user("alice")
    login = auth.login("alice")
    body = {"email": "alice@example.com", "current_password": PASSWORD}
    response = client.patch("/me", json=body, headers=login.headers)
    assert response.status_code == 200
    outbox.send()
    (mail,) = outbox.mailbox.wait_for(1)
    assert_error(reset(client, token_in(mail)), 400, "invalid_link")


def test_an_expired_token(client, outbox, database, verified):
    token = reset_token(client, outbox, username="alice")
    database.execute(update(LinkToken).values(expires_at=LinkToken.created_at))
    assert_error(reset(client, token), 400, "invalid_link")


def test_a_token_dies_when_the_password_changes_by_another_route(client, auth, outbox, verified):
    token = reset_token(client, outbox, username="alice")
    login = auth.login("alice")
    body = {"current_password": PASSWORD, "new_password": "changed the usual way"}
    assert client.post("/me/password", json=body, headers=login.headers).status_code == 204
    assert_error(reset(client, token), 400, "invalid_link")


def test_a_token_dies_when_the_address_changes(client, auth, outbox, verified):
    """A link mailed to an address the account has left (a mailbox lost, say) no longer resets its password."""
    token = reset_token(client, outbox, username="alice")
    login = auth.login("alice")
    body = {"email": "elsewhere@example.com", "current_password": PASSWORD}
    assert client.patch("/me", json=body, headers=login.headers).status_code == 200
    assert_error(reset(client, token), 400, "invalid_link")


def test_a_token_dies_when_an_admin_changes_the_password(client, auth, admin, outbox, verified):
    token = reset_token(client, outbox, username="alice")
    assert client.patch("/users/2", json={"password": "set by the admin"}, headers=admin.headers).status_code == 200
    assert_error(reset(client, token), 400, "invalid_link")


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "é" * 43, "A" * 100])
def test_tokens_that_are_not_ours(client, verified, token):
    response = reset(client, token)
    assert_error(response, 400, "invalid_link")


def test_the_new_password_follows_the_password_rules(client, outbox, verified):
    token = reset_token(client, outbox, username="alice")
    response = reset(client, token, "password123")
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == {"new_password"}
    assert reset(client, token).status_code == 204  # the refused password did not use up the token


def test_ten_requests_at_once_with_one_token_succeed_once(app, client, outbox, verified):
    token = reset_token(client, outbox, username="alice")
    start = threading.Barrier(10)

    def use(index):
        with app.test_client() as own:
            start.wait()
            return reset(own, token, f"passphrase number {index}").status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(use, range(10)))
    assert statuses == [204] + [400] * 9


def test_mail_bombing_past_the_limit_answers_the_same_and_sends_nothing_more(client, limited_app, mailbox, verified):
    """MAIL_RATE_LIMIT reset mails per account in its window; further requests answer 202 and send nothing."""
    limited = limited_app({"MAIL_RATE_LIMIT": "2 per hour", "TOKEN_RATE_LIMIT": "100 per minute"})
    sender_app = limited_app({"MAIL_RATE_LIMIT": "2 per hour"}, SMTP_URL=mailbox.smtp_url)
    with limited.test_client() as own:
        answers = [forgot(own, username="alice") for _ in range(6)]
    assert {(answer.status_code, answer.json["message"]) for answer in answers} == {(202, ACCEPTED["message"])}
    outcomes = Outbox(sender_app, mailbox).send()
    assert outcomes["requests"] == 6 and outcomes["sent"] == 2
    time.sleep(0.2)
    assert len(mailbox.messages()) == 2


def test_without_a_mail_server_the_routes_that_would_send_say_so(make_app, auth):
    auth.add_user("alice", email="alice@example.com", email_verified=True)
    no_mail = make_app(SMTP_URL=None, PUBLIC_URL=None)
    with no_mail.test_client() as own:
        assert_error(forgot(own, username="alice"), 503, "mail_unavailable")
        assert_error(forgot(own, username="nobody"), 503, "mail_unavailable")  # the same for everyone
        login = auth.login("alice", client=own)
        body = {"current_password": PASSWORD, "new_password": "changed without mail"}
        assert own.post("/me/password", json=body, headers=login.headers).status_code == 204


def test_the_outbox_keeps_no_link_once_sent(client, outbox, database, verified):
    reset_token(client, outbox, username="alice")
    payloads = database.scalars(OutboxItem.__table__.select().with_only_columns(OutboxItem.payload))
    assert payloads and all(payload == {} for payload in payloads)


def test_the_plain_text_carries_the_link_first(client, outbox, verified):
    token = reset_token(client, outbox, username="alice")
    (mail,) = outbox.mailbox.messages()
    assert f"token={token}" in text_of(mail).split("http", 1)[1]


@pytest.mark.parametrize("body", [{}, {"username": "alice", "email": "alice@example.com"}, {"token": "x"}])
def test_forgot_takes_one_of_username_or_email(client, body):
    assert_error(forgot(client, **body), 400, "invalid_request")


def test_flask_users_reset_link_prints_a_working_link(runner, client, verified):
    result = runner.invoke(args=["users", "reset-link", "alice"])
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith("http://localhost/#action=reset-password&token=")
    assert reset(client, link.rpartition("token=")[2]).status_code == 204
