"""The mails the service sends, written to the outbox in the caller's transaction (docs/mail.md).

Nothing here talks to a mail server: a row of the outbox is written beside the
change that causes it, so a rolled-back change sends nothing and a committed
one is sent by mail/sender.py, however long the mail server is away. Each mail
has a fixed subject (nothing a user typed reaches a header), a plain-text part
whose first link carries the token, and an HTML part. A mail names the account
by its username, never its display name: a name is free text, and one holding
a line break and a link would put a stranger's link first.
"""

import html
import re

from flask import current_app

from ..storage.extensions import db
from ..storage.models import OutboxItem, User
from .exceptions import MailUnavailable

# Kinds of outbox items: the mails, and the reset requests looked into after answering (mail/sender.py).
VERIFY_MAIL = "verify_email"
RESET_MAIL = "password_reset"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a kind of mail)
EMAIL_CHANGED = "email_changed"
MFA_CHANGED = "mfa_changed"
SIGNIN_ALERT = "signin_alert"
RESET_REQUEST = "reset_request"
# Set in the session's info when it writes to the outbox: its commit wakes this worker's sender (mail/sender.py).
QUEUED = "outbox_queued"


def mail_enabled() -> bool:
    return current_app.config["MAIL_DELIVERY"] is not None


def require_mail() -> None:
    """Refuse (MailUnavailable) what would send a link when no mail server is configured."""
    if not mail_enabled():
        raise MailUnavailable()


def queue_reset_request(*, username: str | None, email: str | None) -> None:
    """A reset asked for: looked into after the answer, so that the answer says nothing (mail/sender.py)."""
    db.session.add(OutboxItem(kind=RESET_REQUEST, payload={"username": username, "email": email}))
    db.session.info[QUEUED] = True


def verification_mail(user: User, token: str) -> None:
    _queue(
        user,
        VERIFY_MAIL,
        to=user.email,
        subject="Confirm your e-mail address",
        paragraphs=[
            "Someone, hopefully you, gave this address to the account {who}. Confirm it by opening this link "
            "within 24 hours:",
            "If it was not you, ignore this mail: the address stays unconfirmed.",
        ],
        link=current_app.config["EMAIL_VERIFY_URL"].format(token=token),
    )


def reset_mail(user: User, token: str) -> None:
    _queue(
        user,
        RESET_MAIL,
        to=user.email,
        subject="Reset your password",
        paragraphs=[
            "Someone, hopefully you, asked to reset the password of the account {who}. Set a new one by "
            "opening this link within 30 minutes (it works once):",
            "If it was not you, ignore this mail: your password stays as it is.",
        ],
        link=current_app.config["PASSWORD_RESET_URL"].format(token=token),
    )


def password_changed_notice(user: User) -> None:
    """To the user's verified address, if any: their password changed (by any route)."""
    if mail_enabled() and user.email and user.email_verified:
        _queue(
            user,
            PASSWORD_CHANGED,
            to=user.email,
            subject="Your password was changed",
            paragraphs=[
                "The password of the account {who} was just changed, and every session of it has ended.",
                "If it was not you, reset your password at once and tell the service's operator.",
            ],
        )


def email_changed_notice(user: User, *, old_email: str | None, was_verified: bool) -> None:
    """To the old address, if it was verified: the account's address is changing."""
    if mail_enabled() and old_email and was_verified:
        _queue(
            user,
            EMAIL_CHANGED,
            to=old_email,
            subject="Your e-mail address was changed",
            paragraphs=[
                "The e-mail address of the account {who} was just changed, away from this one.",
                "If it was not you, reset your password at once and tell the service's operator.",
            ],
        )


def mfa_notice(user: User, *, enabled: bool, by_admin: bool = False) -> None:
    """To the user's verified address, if any: their second factor was turned on or off."""
    if not (mail_enabled() and user.email and user.email_verified):
        return
    if enabled:
        subject, what = "A second factor was turned on", "now needs a code from an authenticator app to log in"
    elif by_admin:
        subject, what = "Your second factor was removed", "had its second factor removed by an admin, and every "
        what += "session of it has ended"
    else:
        subject, what = "Your second factor was turned off", "no longer needs a code to log in"
    _queue(
        user,
        MFA_CHANGED,
        to=user.email,
        subject=subject,
        paragraphs=[
            f"The account {{who}} {what}.",
            "If it was not you, reset your password at once and tell the service's operator.",
        ],
    )


def signin_alert(user: User, token: str, *, when: str, ip: str | None, user_agent: str | None) -> None:
    """To the user's verified address: a device it has not seen signed in; the link ends that session."""
    _queue(
        user,
        SIGNIN_ALERT,
        to=user.email,
        subject="New sign-in to your account",
        paragraphs=[
            "The account {who} was just signed in to from a new device (one that has not logged in to it since its "
            "password was last set). If it was not you, open this link to end that sign-in (it asks before it "
            "ends anything), then reset your password:",
            f"When: {when}. From: {ip or 'an unknown address'}, {_quoted(user_agent)}.",
            "If it was you, there is nothing to do.",
        ],
        link=current_app.config["SIGNIN_ALERT_URL"].format(token=token),
    )


def _quoted(user_agent: str | None) -> str:
    """A User-Agent as the client sent it, made harmless: no link a mail reader would make of it.

    Mail readers make links of bare domains too ("evil.example/reset"), so
    every dot is written "[.]", as security notices write addresses they
    must not link.
    """
    if not user_agent:
        return "no User-Agent"
    tame = re.sub(r"[^A-Za-z0-9 ._;()+,/-]", "?", user_agent).replace(".", "[.]")
    return f'User-Agent "{tame}"'


def _queue(user: User, kind: str, *, to: str | None, subject: str, paragraphs: list[str], link: str | None = None):
    """Write one mail to the outbox: the paragraphs, with `link` (if any) after the first, its only link."""
    who = user.username  # letters, digits, ".", "_" and "-" only: no link, no markup (escaped all the same)
    lines = [paragraph.replace("{who}", f'"{who}"') for paragraph in paragraphs]
    parts = [f"<p>{html.escape(p).replace('{who}', f'<strong>{html.escape(who)}</strong>')}</p>" for p in paragraphs]
    if link is not None:
        lines.insert(1, link)
        parts.insert(1, f'<p><a href="{html.escape(link)}">{html.escape(link)}</a></p>')
    db.session.add(
        OutboxItem(
            kind=kind,
            user_id=user.id,
            payload={"to": to, "subject": subject, "text": "\n\n".join(lines) + "\n", "html": "\n".join(parts) + "\n"},
        )
    )
    db.session.info[QUEUED] = True
