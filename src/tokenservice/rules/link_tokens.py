"""The one-use tokens in mailed links: a password reset (30 minutes), an address to verify (24 hours), and a
sign-in alert's "this wasn't me" (a year: it ends only a live session, and goes when its session is purged).

A token is 32 random bytes, URL-safe base64 in the link, stored here only as
its SHA-256. It serves one purpose for one
user, once: using it is a single UPDATE ... WHERE used_at IS NULL, so of ten
requests at once one wins. Both die with the address they were mailed to; a
reset token also with the password hash it was issued under (any password
change, by any route). A sign-in alert's token is bound to its session only:
whoever took the account over cannot kill it by changing the address. The link itself sits in the outbox only until its
mail is sent (rules/notices.py, mail/sender.py).
"""

import base64
import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, update

from ..storage.extensions import db
from ..storage.models import LinkToken, User
from .exceptions import InvalidLink

RESET = "password_reset"
VERIFY = "verify_email"
SIGNIN = "signin_alert"
# A session slides on with each refresh, so an alert's token must outlive any session a thief keeps refreshing.
LIFETIMES = {RESET: timedelta(minutes=30), VERIFY: timedelta(hours=24), SIGNIN: timedelta(days=365)}
TOKEN_BYTES = 32


def issue(*, purpose: str, user: User, session_id: uuid.UUID | None = None) -> str:
    """A new token for `user` (the caller commits), as the string a link carries."""
    raw = secrets.token_bytes(TOKEN_BYTES)
    db.session.add(
        LinkToken(
            token_hash=hashlib.sha256(raw).digest(),
            purpose=purpose,
            user_id=user.id,
            email=user.email,
            password_fingerprint=fingerprint(user.password_hash) if purpose == RESET else None,
            session_id=session_id,
            expires_at=func.now() + LIFETIMES[purpose],
        )
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fingerprint(password_hash: str) -> bytes:
    return hashlib.sha256(password_hash.encode()).digest()


def peek(token: str, *, purpose: str) -> User:
    """The active user a live token of `purpose` is for, without using it; else InvalidLink."""
    row = db.session.execute(
        db.select(LinkToken, User)
        .join(User, User.id == LinkToken.user_id)
        .where(*_live(token, purpose), User.is_active)
    ).one_or_none()
    if row is None or not _still_bound(purpose, row.LinkToken.email, row.LinkToken.password_fingerprint, row.User):
        raise InvalidLink()
    return row.User


def redeem(token: str, *, purpose: str) -> User:
    """Use a live token of `purpose` (once: concurrent uses wait, all but one get InvalidLink); its user, locked.

    The user's row stays locked until the caller commits, so the password or
    address the token is bound to cannot change meanwhile.
    """
    used = _use(token, purpose)
    user = db.session.get(User, used.user_id, with_for_update=True, populate_existing=True)
    if user is None or not user.is_active or not _still_bound(purpose, used.email, used.password_fingerprint, user):
        raise InvalidLink()  # not committed: the token stays as it was
    return user


def redeem_session_link(token: str) -> tuple[int, uuid.UUID]:
    """Use a live sign-in alert token (once, as `redeem`): the user and the session it names; else InvalidLink."""
    used = _use(token, SIGNIN)
    if used.session_id is None:
        raise InvalidLink()  # not committed: the token stays as it was
    return used.user_id, used.session_id


def recent(*, user_id: int, purpose: str, window: timedelta) -> int:
    """How many tokens of `purpose` were issued to the user within `window`."""
    return db.session.execute(
        db.select(func.count())
        .select_from(LinkToken)
        .where(LinkToken.user_id == user_id, LinkToken.purpose == purpose, LinkToken.created_at > func.now() - window)
    ).scalar_one()


def _use(token: str, purpose: str):
    """Mark a live token of `purpose` used, in one UPDATE (of concurrent uses, one wins); its row, or InvalidLink."""
    used = db.session.execute(
        update(LinkToken)
        .where(*_live(token, purpose))
        .values(used_at=func.now())
        .returning(LinkToken.user_id, LinkToken.email, LinkToken.password_fingerprint, LinkToken.session_id)
    ).one_or_none()
    if used is None:
        raise InvalidLink()
    return used


def _live(token: str, purpose: str):
    return (
        LinkToken.token_hash == _hash_of(token),
        LinkToken.purpose == purpose,
        LinkToken.used_at.is_(None),
        LinkToken.expires_at > func.now(),
    )


def _hash_of(token: str) -> bytes:
    """The SHA-256 of the token's bytes; of something no token has when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)) if token.isascii() else b""
    except ValueError:
        raw = b""
    if len(raw) != TOKEN_BYTES:
        raw = b"not a token"
    return hashlib.sha256(raw).digest()


def _still_bound(purpose: str, email: str | None, password_fingerprint: bytes | None, user: User) -> bool:
    """The address has not changed since (a verification token), nor, for a reset token, the password."""
    same_address = user.email is not None and email is not None and user.email.lower() == email.lower()
    if purpose == RESET:
        return same_address and secrets.compare_digest(password_fingerprint or b"", fingerprint(user.password_hash))
    return same_address
