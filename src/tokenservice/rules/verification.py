"""Verifying an e-mail address: the link mailed to it, and following it.

Setting an address (at registration, by its owner, or by an admin) mails it
a link at once (users.py calls `send_verification`); the owner may ask for it
again, at most MAIL_RATE_LIMIT times in its window. Following the link marks
that address, and no other, verified. The token: link_tokens.py.
"""

from datetime import timedelta

import limits
from flask import current_app

from ..storage.models import User
from . import events, link_tokens, notices
from .exceptions import EmailAlreadyVerified, NoEmailAddress, TooManyAttempts


def send_verification(user: User, *, by_owner: bool = False) -> None:
    """Mail a link that verifies the user's address (the caller commits); MAIL_RATE_LIMIT when the owner asks again."""
    notices.require_mail()
    if not user.email:
        raise NoEmailAddress()
    if user.email_verified:
        raise EmailAlreadyVerified()
    if by_owner and not within_mail_limit(user, link_tokens.VERIFY):
        window = limits.parse(current_app.config["MAIL_RATE_LIMIT"]).get_expiry()
        raise TooManyAttempts("Too many verification mails for this account; try again later.", retry_after=window)
    notices.verification_mail(user, link_tokens.issue(purpose=link_tokens.VERIFY, user=user))
    events.record("verification_mailed", user_id=user.id)


def verify_email(*, token: str) -> None:
    """Mark the address a verification link was sent to as verified, once; the caller commits."""
    user = link_tokens.redeem(token, purpose=link_tokens.VERIFY)
    user.email_verified = True
    events.record("email_verified", user_id=user.id)


def within_mail_limit(user: User, purpose: str) -> bool:
    """Fewer than MAIL_RATE_LIMIT links of `purpose` sent to this account in its window (counted in PostgreSQL)."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return True
    limit = limits.parse(current_app.config["MAIL_RATE_LIMIT"])
    window = timedelta(seconds=limit.get_expiry())
    return link_tokens.recent(user_id=user.id, purpose=purpose, window=window) < limit.amount
