"""Failed logins per username, from any address, worker or instance (docs/abuse-protection.md).

Counted in PostgreSQL, the one store every instance already shares, so the
limit holds with no Redis configured and from a thousand addresses at once.
An attempt is counted as a failure before the password is checked
(`reserve`) and taken back when it succeeds (`forgive`), so concurrent
guesses cannot slip past the count while their hashes are being checked.
Usernames are stored as SHA-256 digests: a mistyped password in the username
field never lands in the table.

The limit stops guessers, not owners. Each username has one allowance for
strangers, and one more for every client that has proven itself (a bucket):
a device that sends back the device_token of an earlier successful login
(devices.py), or a live session changing its password. A stranger's guesses
spend only the strangers' allowance, so the owner's device still logs in
while strangers are refused; a wrong password sent from a proven client
spends only its own.
"""

import hashlib
import math
import uuid

import limits
from flask import current_app
from sqlalchemy import delete, func, insert, select, true

from ..storage.database import changed_rows
from ..storage.extensions import db
from ..storage.models import LoginFailure
from .exceptions import TooManyFailedLogins


def reserve(username: str, *, bucket: uuid.UUID | None = None) -> int | None:
    """Count an attempt for `username` (in `bucket`, None for strangers) as failed unless it succeeds.

    Refuses it (TooManyFailedLogins) once LOGIN_FAILURE_LIMIT failures are
    counted there. Returns the reservation to `forgive`, or None with
    RATELIMIT_ENABLED=false. It commits the request's transaction at once (so
    call it before any change), so that other workers see the reservation
    before this password is checked, and so that the request holds no
    connection while its password is hashed. The same answer for existing
    and unknown usernames.
    """
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return None
    limit = limits.parse(config["LOGIN_FAILURE_LIMIT"])
    window = func.make_interval(0, 0, 0, 0, 0, 0, limit.get_expiry())
    key = username_key(username)
    session = db.session
    # One attempt per username at a time in here (a few milliseconds: no hashing),
    # whatever its bucket. The count below sees every attempt committed before
    # the lock was granted because each statement reads afresh (READ COMMITTED,
    # PostgreSQL's default): under REPEATABLE READ it would not.
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key.hex(), 0))))
    session.execute(
        delete(LoginFailure).where(LoginFailure.username_key == key, LoginFailure.failed_at <= func.now() - window)
    )
    recent = (
        select(LoginFailure.failed_at)
        .where(LoginFailure.username_key == key, LoginFailure.bucket.is_not_distinct_from(bucket))
        .order_by(LoginFailure.failed_at.desc())
        .limit(limit.amount)
        .subquery()
    )
    count, wait = session.execute(
        select(func.count(), func.extract("epoch", func.min(recent.c.failed_at) + window - func.now()))
    ).one()
    if count >= limit.amount:
        raise TooManyFailedLogins(retry_after=max(1, math.ceil(wait)))  # the request's end rolls back
    insert_one = insert(LoginFailure).values(username_key=key, bucket=bucket).returning(LoginFailure.id)
    reservation = session.execute(insert_one).scalar()
    session.commit()
    return reservation


def weigh(reservation: int | None, cost: int) -> None:
    """Count a failed attempt as `cost` failures (a legacy hash took that many Argon2id checks' time).

    Committed at once, like the reservation: the request is about to fail.
    """
    if reservation is None or cost <= 1:
        return
    copies = (
        select(LoginFailure.username_key, LoginFailure.failed_at, LoginFailure.bucket)
        .join(func.generate_series(2, cost).table_valued("copy"), true())
        .where(LoginFailure.id == reservation)
    )
    db.session.execute(insert(LoginFailure).from_select(["username_key", "failed_at", "bucket"], copies))
    db.session.commit()


def forgive(reservation: int | None) -> None:
    """Take back a reserved failure: the attempt succeeded. Part of the caller's transaction."""
    if reservation is not None:
        db.session.execute(delete(LoginFailure).where(LoginFailure.id == reservation))


def unlock(username: str) -> int:
    """Forget every counted failure of `username` (strangers' and proven clients'); the caller commits."""
    statement = delete(LoginFailure).where(LoginFailure.username_key == username_key(username))
    return changed_rows(statement.execution_options(synchronize_session=False))


def purge_failures() -> int:
    """Delete the failures older than LOGIN_FAILURE_LIMIT's window, which no longer count."""
    window = limits.parse(current_app.config["LOGIN_FAILURE_LIMIT"]).get_expiry()
    old = LoginFailure.failed_at <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, window)
    # Not synchronised with the ORM session: no ids fetched back (see sessions.purge_sessions).
    deleted = changed_rows(delete(LoginFailure).where(old).execution_options(synchronize_session=False))
    db.session.commit()
    return deleted


def username_key(username: str) -> bytes:
    return hashlib.sha256(username.lower().encode()).digest()
