"""Sign-in alerts: a mail when a device this account has not used signs in, with a link that ends that sign-in.

What counts as a device: the service sees no more than a client's address,
its User-Agent and the device_token a successful login answers with
(devices.py). A login that sends back a device_token this user was given
under the current password is a known device: the same browser or script
again. Any other login is from a new device: the first one, another browser,
storage cleared, or any login after a password change (a password change
forgets every device). Addresses and User-Agents are not used to decide:
both change under a user's feet, and a stranger can copy either.

The mail goes to a verified address only, at most MAIL_RATE_LIMIT of them an
hour per account (a stranger holding the password cannot flood the owner's
mailbox); SIGNIN_ALERTS=false sends none. Its link names the new session:
following it shows a page that asks, and only its POST ends that session,
optionally every other too, once, without logging in (mail scanners open
links).
"""

from datetime import UTC, datetime

from flask import current_app

from ..storage.models import LoginSession
from . import events, link_tokens, notices
from .sessions import end_sessions
from .users import Login
from .verification import within_mail_limit


def alert_if_new_device(login: Login, login_session: LoginSession) -> None:
    """Queue the alert for a login from a new device, when alerts are on and the address is verified."""
    user = login.user
    if login.known_device or not current_app.config["SIGNIN_ALERTS"] or not notices.mail_enabled():
        return
    if not (user.email and user.email_verified):
        return
    if not within_mail_limit(user, link_tokens.SIGNIN):
        events.record("signin_alert_skipped", warning=True, user_id=user.id, reason="mail_rate_limit")
        return
    token = link_tokens.issue(purpose=link_tokens.SIGNIN, user=user, session_id=login_session.id)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    notices.signin_alert(user, token, when=when, ip=login_session.ip, user_agent=login_session.user_agent)
    events.record("signin_alert_queued", user_id=user.id, session_id=login_session.id)


def end_alerted_session(*, token: str, everywhere: bool) -> int:
    """End the session a sign-in alert named (and, `everywhere`, every other); how many ended. The caller commits."""
    user_id, session_id = link_tokens.redeem_session_link(token)
    ended = end_sessions(user_id=user_id, session_id=session_id)
    if everywhere:
        ended += end_sessions(user_id=user_id)
    events.record("sessions_ended", user_id=user_id, sessions=ended, session_id=session_id, by="signin_alert")
    return ended
