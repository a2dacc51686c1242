"""Sign-in alerts: a mail per new device, through the real outbox to a real SMTP server; its "this wasn't me" link."""

import pytest
from helpers import assert_error, assert_refused, steady_step, totp_code
from smtp_server import Outbox, html_of, text_of, token_in
from sqlalchemy import func, update

from tokenservice.storage.models import LinkToken

ADDRESS = "alice@example.com"


@pytest.fixture
def alerting(make_app, mailbox, auth_for):
    """An app with sign-in alerts on (the suite's base turns them off), its AuthActions, and alice, verified."""
    outbox = Outbox(make_app(SMTP_URL=mailbox.smtp_url, SIGNIN_ALERTS="true"), mailbox)
    auth = auth_for(outbox.app)
    auth.add_user("alice", email=ADDRESS, email_verified=True)
    return outbox, auth


def alerts(outbox, count: int):
    outbox.send()
    return [mail for mail in outbox.mailbox.wait_for(count) if mail["Subject"] == "New sign-in to your account"]


def test_a_new_device_is_told_of_once(alerting):
    outbox, auth = alerting
    first = auth.login("alice", headers={"User-Agent": "Phone/1.0 (https://evil.example/x) reset at evil.example/r"})
    (mail,) = alerts(outbox, 1)
    assert mail["To"] == ADDRESS
    text = text_of(mail)
    assert "Phone/1[.]0" in text and "127.0.0.1" in text
    for part in (text, html_of(mail)):  # no second link from the client, not even a bare domain
        assert "https://evil" not in part and "evil.example" not in part
    # The same device again (its device_token): no second mail.
    auth.login("alice", device_token=first.tokens["device_token"])
    outbox.send()
    assert len(outbox.mailbox.messages()) == 1
    # Another device: a second mail.
    auth.login("alice", headers={"User-Agent": "Laptop/2.0"})
    assert len(alerts(outbox, 2)) == 2


def test_the_link_ends_that_session_once_and_only_with_a_post(alerting):
    outbox, auth = alerting
    mine = auth.login("alice")
    outbox.send()
    outbox.mailbox.received.clear()
    stolen = auth.login("alice", headers={"User-Agent": "Thief/1.0"})  # no device_token: a new device
    (mail,) = alerts(outbox, 1)
    token = token_in(mail)
    client = outbox.app.test_client()
    # What a mail scanner does: open the link. The page asks; nothing ends.
    link = next(word for word in text_of(mail).split() if word.startswith("http://"))
    assert link.startswith("http://localhost/#action=end-session&token=")
    page = client.get("/")
    assert page.status_code == 200
    page.close()
    assert client.get("/me", headers=stolen.headers).status_code == 200

    ended = client.post("/signin-alerts/end-session", json={"token": token})
    assert ended.status_code == 204
    assert_refused(client.get("/me", headers=stolen.headers))
    assert client.get("/me", headers=mine.headers).status_code == 200  # only that session
    again = client.post("/signin-alerts/end-session", json={"token": token})
    assert_error(again, 400, "invalid_link")


def test_everywhere_ends_every_session(alerting):
    outbox, auth = alerting
    mine = auth.login("alice")
    outbox.send()
    outbox.mailbox.received.clear()
    auth.login("alice")
    (mail,) = alerts(outbox, 1)
    client = outbox.app.test_client()
    assert client.post("/signin-alerts/end-session", json={"token": token_in(mail), "everywhere": True}).status_code
    assert_refused(client.get("/me", headers=mine.headers))


def test_a_login_with_a_code_is_told_of_too(alerting):
    outbox, auth = alerting
    secret, _ = auth.enrol(auth.login("alice"))
    auth.login("alice", otp=totp_code(secret, steady_step() + 1))
    outbox.send()
    subjects = [mail["Subject"] for mail in outbox.mailbox.wait_for(3)]
    assert sorted(subjects) == ["A second factor was turned on", *["New sign-in to your account"] * 2]


def test_no_alert_without_a_verified_address_or_with_alerts_off(make_app, mailbox, auth_for):
    outbox = Outbox(make_app(SMTP_URL=mailbox.smtp_url, SIGNIN_ALERTS="true"), mailbox)
    auth = auth_for(outbox.app)
    auth.add_user("alice", email=ADDRESS, email_verified=False)
    auth.login("alice")
    off = Outbox(make_app(SMTP_URL=mailbox.smtp_url, SIGNIN_ALERTS="false"), mailbox)
    auth_for(off.app).add_user("bob", email="bob@example.com", email_verified=True)
    auth_for(off.app).login("bob")
    assert outbox.send()["sent"] == 0


def test_alerts_are_bounded_per_account(limited_app, mailbox, auth_for):
    """A stranger holding the password cannot flood the owner's mailbox: MAIL_RATE_LIMIT holds for alerts too."""
    app = limited_app({"MAIL_RATE_LIMIT": "2 per hour"}, SMTP_URL=mailbox.smtp_url, SIGNIN_ALERTS="true")
    outbox = Outbox(app, mailbox)
    auth = auth_for(outbox.app)
    auth.add_user("alice", email=ADDRESS, email_verified=True)
    for _ in range(4):
        auth.login("alice")
    assert outbox.send()["sent"] == 2


def test_an_expired_or_foreign_token_ends_nothing(alerting, database):
    outbox, auth = alerting
    stolen = auth.login("alice")
    (mail,) = alerts(outbox, 1)
    client = outbox.app.test_client()
    database.execute(update(LinkToken).values(expires_at=func.now()))
    assert_error(client.post("/signin-alerts/end-session", json={"token": token_in(mail)}), 400, "invalid_link")
    assert_error(client.post("/signin-alerts/end-session", json={"token": "x" * 43}), 400, "invalid_link")
    assert client.get("/me", headers=stolen.headers).status_code == 200
