"""The outbox: a mail is written with the change that causes it, sent once, and kept until the server takes it."""

import email
import email.policy
import threading
from datetime import timedelta

import pytest
from helpers import PASSWORD
from smtp_server import Mailbox, Outbox, self_signed, text_of, token_in
from sqlalchemy import func, select, update

from tokenservice.mail import sender
from tokenservice.storage.extensions import db
from tokenservice.storage.models import OutboxItem


def pending(database) -> int:
    return database.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.done_at.is_(None)))


def make_due(database) -> None:
    database.execute(update(OutboxItem).values(due_at=func.now()))


def test_a_rolled_back_change_sends_nothing(app, auth, database):
    with app.test_request_context():
        from tokenservice.rules.users import create_user

        create_user(username="alice", password=PASSWORD, email="alice@example.com")
        db.session.rollback()
    assert pending(database) == 0


def test_while_the_mail_server_is_down_nothing_is_lost_and_it_arrives_once_back(auth, outbox, database, app_log):
    auth.register("alice", email="alice@example.com")
    outbox.mailbox.stop()
    assert outbox.send() == {"requests": 0, "sent": 0, "failed": 1, "given_up": 0}
    assert outbox.send()["failed"] == 0  # not due yet: backing off
    failed = [record for record in app_log.records if record.getMessage() == "mail_failed"]
    assert failed and failed[0].fields["reason"] == "ConnectionRefusedError"
    assert "token" not in str(failed[0].fields)
    outbox.mailbox.start()
    make_due(database)
    assert outbox.send()["sent"] == 1
    outbox.send()
    assert len(outbox.mailbox.wait_for(1)) == 1
    assert pending(database) == 0


def test_a_mail_is_given_up_after_the_bound(auth, outbox, database, app_log):
    auth.register("alice", email="alice@example.com")
    outbox.mailbox.stop()
    for _ in range(sender.MAX_ATTEMPTS - 1):
        make_due(database)
        assert outbox.send()["failed"] == 1
    make_due(database)
    assert outbox.send()["given_up"] == 1
    assert database.scalar(select(OutboxItem.payload)) == {}
    assert any(record.getMessage() == "mail_given_up" for record in app_log.records)


def test_two_senders_at_once_send_each_mail_once(make_app, auth, mailbox):
    for index in range(30):
        auth.add_user(f"user{index}", email=f"user{index}@example.com")
    with make_app().test_request_context():
        from tokenservice.rules.users import get_user
        from tokenservice.rules.verification import send_verification

        for index in range(30):
            send_verification(get_user(index + 1))
        db.session.commit()
    senders = [Outbox(make_app(SMTP_URL=mailbox.smtp_url), mailbox) for _ in range(2)]
    start = threading.Barrier(2)
    results = []

    def run(outbox):
        start.wait()
        results.append(outbox.send()["sent"])

    threads = [threading.Thread(target=run, args=(outbox,)) for outbox in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 30
    recipients = sorted(str(mail["To"]) for mail in mailbox.wait_for(30))
    assert recipients == sorted(f"user{index}@example.com" for index in range(30))


def test_a_claimed_mail_is_not_sent_by_another_until_its_claim_runs_out(auth, outbox, database):
    auth.register("alice", email="alice@example.com")
    database.execute(update(OutboxItem).values(claimed_until=func.now() + func.make_interval(0, 0, 0, 0, 0, 1)))
    assert outbox.send()["sent"] == 0
    database.execute(update(OutboxItem).values(claimed_until=func.now()))
    assert outbox.send()["sent"] == 1


def test_flask_mail_send(make_app, auth, mailbox):
    auth.register("alice", email="alice@example.com")
    result = make_app(SMTP_URL=mailbox.smtp_url).test_cli_runner().invoke(args=["mail", "send"])
    assert result.exit_code == 0, result.output
    assert "sent 1 mail(s)" in result.output
    mailbox.wait_for(1)


def test_in_development_mails_go_to_the_log_and_instance(make_app, auth, tmp_path, monkeypatch, app_log):
    monkeypatch.chdir(tmp_path)  # instance/ is the working directory's
    dev = make_app(APP_ENV="development", SMTP_URL=None, PUBLIC_URL=None)
    assert dev.config["PUBLIC_URL"] == "http://127.0.0.1:5000"
    with dev.test_client() as own:
        assert auth.register("alice", email="alice@example.com", client=own).status_code == 201
    with dev.app_context():
        assert sender.send_due()["sent"] == 1
    (saved,) = (tmp_path / "instance" / "mail").iterdir()
    mail = email.message_from_bytes(saved.read_bytes(), policy=email.policy.default)
    assert "http://127.0.0.1:5000/#action=verify-email&token=" in text_of(mail)
    assert any(
        token_in(mail) in record.getMessage() for record in app_log.records if record.name == "tokenservice.mail"
    )


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, which this process's TLS clients trust (SSL_CERT_FILE)."""
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


# aiosmtpd warns of AUTH without STARTTLS when the whole connection is TLS (smtps://): it is not.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("smtps", [False, True], ids=["starttls", "smtps"])
def test_over_tls_with_a_login(make_app, auth, certificate, smtps):
    server = Mailbox(tls=certificate, smtps=smtps, login=("mailer@example.com", "p@ss:word")).start()
    try:
        auth.register("alice", email="alice@example.com")
        outbox = Outbox(make_app(SMTP_URL=server.smtp_url), server)
        assert outbox.send()["sent"] == 1
        server.wait_for(1)
    finally:
        server.stop()


def test_a_wrong_login_is_tried_again_later_and_never_given_in_clear(make_app, auth, certificate, database):
    server = Mailbox(tls=certificate, login=("mailer", "right")).start()
    try:
        auth.register("alice", email="alice@example.com")
        wrong = server.smtp_url.replace(":right@", ":wrong@")
        assert Outbox(make_app(SMTP_URL=wrong), server).send()["failed"] == 1
        make_due(database)
        assert Outbox(make_app(SMTP_URL=server.smtp_url), server).send()["sent"] == 1
    finally:
        server.stop()


def test_starttls_is_required_when_the_url_says_smtp(make_app, auth, mailbox, app_log):
    """A server that offers no STARTTLS (or a stripped offer) gets nothing in clear: the mail waits."""
    auth.register("alice", email="alice@example.com")
    with_tls = mailbox.smtp_url.replace("?starttls=false", "")
    assert Outbox(make_app(SMTP_URL=with_tls), mailbox).send()["failed"] == 1
    assert mailbox.messages() == []
    failed = [record for record in app_log.records if record.getMessage() == "mail_failed"]
    assert failed[0].fields["reason"] == "SMTPNotSupportedError"


def test_a_certificate_nobody_trusts_is_refused(make_app, auth, tmp_path):
    server = Mailbox(tls=self_signed(tmp_path)).start()  # not in SSL_CERT_FILE
    try:
        auth.register("alice", email="alice@example.com")
        assert Outbox(make_app(SMTP_URL=server.smtp_url), server).send()["failed"] == 1
        assert server.messages() == []
    finally:
        server.stop()


def test_rows_done_a_week_ago_are_deleted(auth, outbox, database, monkeypatch):
    auth.register("alice", email="alice@example.com")
    auth.register("bob", email="bob@example.com")
    assert outbox.send()["sent"] == 2
    database.execute(update(OutboxItem).where(OutboxItem.id == 1).values(done_at=func.now() - timedelta(days=8)))
    monkeypatch.setattr(sender, "_forgot_at", None)  # as in a process that has not deleted any yet
    outbox.send()
    assert database.scalars(select(OutboxItem.id)) == [2]


def test_a_reset_request_that_fails_holds_up_nothing(client, auth, outbox, database, monkeypatch, app_log):
    """A request the rules cannot look into (here made to fail) waits and is retried; the others go on."""
    from tokenservice.rules import password_reset

    auth.add_user("alice", email="alice@example.com", email_verified=True)
    real = password_reset.look_into_reset_request

    def failing_for_bob(payload):
        if payload["username"] == "bob":
            raise RuntimeError("a bug")
        real(payload)

    monkeypatch.setattr(sender, "look_into_reset_request", failing_for_bob)
    for username in ("bob", "alice"):
        assert client.post("/password/forgot", json={"username": username}).status_code == 202
    assert outbox.send()["requests"] == 2
    outbox.mailbox.wait_for(1, to="alice@example.com")
    assert any(record.getMessage() == "reset_request_failed" for record in app_log.records)
    waiting = database.scalar(select(OutboxItem.attempts).where(OutboxItem.done_at.is_(None)))
    assert waiting == 1
