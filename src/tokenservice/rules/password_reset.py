"""Resetting a forgotten password by mail.

A reset is asked for by username or address, and the answer is the same
whatever exists: the request only writes an outbox item, which the sender
looks into after the answer (`look_into_reset_request`). Only a verified
address of an active user is sent a reset link, at most MAIL_RATE_LIMIT of
them in its window; everything else is dropped without a word. Using the
link sets the password once and ends every session. The token: link_tokens.py.
"""

from flask import current_app

from ..storage.extensions import db
from ..storage.models import User
from . import events, link_tokens, notices
from .exceptions import PasswordRefused
from .passwords import password_problem
from .sessions import end_sessions
from .users import find_user_by_email, find_user_by_username, hash_new_password
from .verification import within_mail_limit


def request_reset(*, username: str | None = None, email: str | None = None) -> None:
    """Ask for a reset link (the caller commits); MailUnavailable without a mail server, and nothing else tells."""
    notices.require_mail()
    notices.queue_reset_request(username=username, email=email)


def look_into_reset_request(payload: dict) -> None:
    """For the sender: mail a reset link if the request names an active user with a verified address; caller commits."""
    username, email = payload.get("username"), payload.get("email")
    user = find_user_by_username(username) if username else find_user_by_email(email) if email else None
    if user is None or not user.is_active or not user.email or not user.email_verified:
        events.record("password_reset_dropped", user_id=user.id if user else None, reason=_why_dropped(user))
        return
    if not within_mail_limit(user, link_tokens.RESET):
        events.record("password_reset_dropped", warning=True, user_id=user.id, reason="mail_rate_limit")
        return
    notices.reset_mail(user, link_tokens.issue(purpose=link_tokens.RESET, user=user))
    events.record("password_reset_mailed", user_id=user.id)


def reset_link(user: User) -> str | None:
    """A reset link for an admin to pass on (`flask users reset-link`), or None without PASSWORD_RESET_URL."""
    template = current_app.config["PASSWORD_RESET_URL"]
    if template is None:
        return None
    events.record("password_reset_link_made", user_id=user.id)
    return template.format(token=link_tokens.issue(purpose=link_tokens.RESET, user=user))


def reset_password(*, token: str, new_password: str) -> None:
    """Set a new password with a reset link's token, once, and end every session of the user; the caller commits.

    No database connection is held while the new password is hashed; the
    token is used only after that, in one UPDATE, so of concurrent uses one wins.
    """
    user = link_tokens.peek(token, purpose=link_tokens.RESET)
    problem = password_problem(new_password, username=user.username)
    if problem:
        raise PasswordRefused("The new password is refused.", fields={"new_password": problem})
    new_hash = hash_new_password(new_password)
    user = link_tokens.redeem(token, purpose=link_tokens.RESET)
    user.password_hash = new_hash
    db.session.flush()  # the row before the sessions, as for every password change
    ended = end_sessions(user_id=user.id)
    events.record("password_reset", user_id=user.id, sessions=ended)
    notices.password_changed_notice(user)


def _why_dropped(user: User | None) -> str:
    if user is None:
        return "no_such_user"
    if not user.is_active:
        return "inactive"
    return "no_verified_email"
