"""Users: registration, login checks, profile changes and administration, free of `request`."""

import contextlib
import uuid
from dataclasses import dataclass
from typing import cast

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified

from ..storage.database import constraint_name, release_connection
from ..storage.extensions import db
from ..storage.models import EMAIL_INDEX, USER, USERNAME_INDEX, User
from . import events, login_failures, notices, second_factor
from .devices import recognised_device
from .exceptions import (
    ChangedMeanwhile,
    EmailNotVerified,
    EmailTaken,
    HashingBusy,
    InvalidCredentials,
    InvalidInput,
    InvalidOtp,
    MfaNotEnabled,
    MfaRequired,
    MfaUnavailable,
    NoSuchUser,
    PasswordRefused,
    SessionEnded,
    TooManyAttempts,
    TooManyFailedLogins,
    UsernameTaken,
    WrongCode,
    WrongCurrentPassword,
)
from .passwords import (
    EXPIRED_HASH,
    LEGACY_PREFIXES,
    burn_hash_time,
    check_cost,
    hash_password,
    hashing_turn,
    password_problem,
    verify_password,
)
from .roles import ensure_another_admin_remains, is_active_admin
from .sessions import end_sessions, find_live_user
from .verification import send_verification

MAX_EMAIL_LENGTH = 254  # RFC 5321's path, less its angle brackets


def find_user_by_username(username: str) -> User | None:
    if not username.isascii() or "\x00" in username:
        # Usernames are ASCII; str.lower() would map look-alikes such as the
        # Kelvin sign onto ASCII letters. (PostgreSQL refuses NUL outright.)
        return None
    return db.session.execute(db.select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()


def find_user_by_email(email: str) -> User | None:
    if "\x00" in email:
        return None
    # lower() on both sides in PostgreSQL, as the unique index has it.
    return db.session.execute(db.select(User).where(func.lower(User.email) == func.lower(email))).scalar_one_or_none()


def checked_email(value: str) -> str:
    """The address as stored (email-validator's normal form, no DNS look-up), or InvalidInput naming `email`."""
    try:
        address = validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput("The e-mail address is not valid.", fields={"email": str(error)}) from None
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidInput(
            "The e-mail address is too long.", fields={"email": f"At most {MAX_EMAIL_LENGTH} characters."}
        )
    return address


def create_user(
    *, username: str, password: str, name: str | None = None, role: str = USER, email: str | None = None
) -> User:
    """Add a user, or refuse (PasswordRefused, UsernameTaken, EmailTaken); a new address is mailed its link.

    NewUserSchema reports a refused password too, beside the other fields'
    problems; this check is for every other caller.
    """
    problem = password_problem(password, username=username)
    if problem:
        raise PasswordRefused("The password is refused.", fields={"password": problem})
    if email is not None:
        email = checked_email(email)
        notices.require_mail()  # before the hash: no mail server, no address to verify
    password_hash = hash_new_password(password)
    if find_user_by_username(username) is not None:
        raise UsernameTaken()
    user = User(username=username, name=name, role=role, password_hash=password_hash, email=email)
    # A concurrent registration of the same name or address fails here, on a unique index.
    _save(lambda: db.session.add(user))
    events.record("user_created", user_id=user.id, role=role)
    if email is not None:
        send_verification(user)
    return user


def _save(change) -> None:
    """Make `change` and flush it in a savepoint (which keeps the caller's transaction usable), naming a taken name."""
    try:
        with db.session.begin_nested():
            change()
    except IntegrityError as exc:
        if constraint_name(exc) == USERNAME_INDEX:
            raise UsernameTaken() from None
        if constraint_name(exc) == EMAIL_INDEX:
            raise EmailTaken() from None
        raise


def _set_email(user: User, email: str | None, *, by_owner: bool = False) -> None:
    """Give the user a new address (unverified, and mailed its link) or none; the old verified one is told.

    The owner's changes count against MAIL_RATE_LIMIT, as their own requests
    for a link do: switching between addresses mails no mailbox without end.
    """
    if email is not None:
        email = checked_email(email)
    old, was_verified = user.email, user.email_verified
    if not _is_new_address(old, email):
        if old != email:
            _save(lambda: setattr(user, "email", email))  # the same address: its case only
        return
    if email is not None:
        notices.require_mail()

    def change():
        user.email, user.email_verified = email, False
        # Written even when it was False already: a verification of the old address committing meanwhile must not
        # leave the new one verified.
        flag_modified(user, "email_verified")

    _save(change)
    events.record("email_changed", user_id=user.id)
    notices.email_changed_notice(user, old_email=old, was_verified=was_verified)
    if email is not None:
        send_verification(user, by_owner=by_owner)


@dataclass(frozen=True)
class Login:
    user: User  # locked until the caller commits
    device_id: uuid.UUID  # the device the login's device_token named, or a new one
    known_device: bool  # whether the login's device_token was one this user was given under this password
    amr: list[str]  # how it proved itself (RFC 8176): "pwd", and "otp" after a second factor


def authenticate(
    *,
    username: str,
    password: str,
    device_token: str | None = None,
    otp: str | None = None,
    recovery_code: str | None = None,
) -> Login:
    """The active user with these credentials and the device to answer for, or InvalidCredentials.

    An unknown username costs the same hash work as a wrong password, and an
    inactive user gets the same answer as a wrong password. Past
    LOGIN_FAILURE_LIMIT failures, any username is refused (TooManyFailedLogins)
    before its password is checked; a device token this user was given
    (devices.py) draws on an allowance of its own, which strangers cannot
    spend. The device is the one the token names, or a new one. No database
    connection is held while the password is checked.

    Only once the password is right is the second factor asked for
    (second_factor.login_methods): a missing code is MfaRequired, which is
    not a failure; a wrong one is InvalidOtp, counted as a failed login.
    """
    with hashing_turn():
        user = find_user_by_username(username)
        # Read now: the reservation below commits, after which the row's attributes would be read again.
        known = (user.id, user.password_hash) if user is not None else None
        user_id = known[0] if known else None
        device_id = recognised_device(device_token, user_id=known[0], password_hash=known[1]) if known else None
        try:
            reservation = login_failures.reserve(username, bucket=device_id)
        except TooManyFailedLogins:
            events.record("login_throttled", warning=True, user_id=user_id)
            raise
        with _forgiven_if_not_checked(reservation):
            if known is None:
                release_connection()
                burn_hash_time(password)
                events.record("login_failed", warning=True, user_id=None, reason="unknown_username")
                raise InvalidCredentials()
            checked = _check_then_lock(*known, password)
    if not checked.matches:
        # A wrong guess at a legacy hash took several Argon2id checks' time: it counts as that many.
        login_failures.weigh(reservation, check_cost(checked.stored_hash))
        events.record("login_failed", warning=True, user_id=user_id, reason="wrong_password")
        raise InvalidCredentials()
    if checked.user is None:  # deleted meanwhile
        raise InvalidCredentials()
    if not checked.user.is_active:
        events.record("login_failed", warning=True, user_id=user_id, reason="inactive")
        raise InvalidCredentials()
    if checked.new_hash is not None:
        checked.user.password_hash = cast(str, checked.new_hash)  # a replacement was given: it was hashed
    if current_app.config["REQUIRE_VERIFIED_EMAIL"] and not (checked.user.email and checked.user.email_verified):
        # Only after the password was right: the answer tells nothing to whoever does not hold it. The refused
        # user cannot log in to ask for a link, so a new one is mailed (within MAIL_RATE_LIMIT). Before the
        # second factor: a code is not used up by a login that is refused anyway.
        login_failures.forgive(reservation)
        if checked.user.email and notices.mail_enabled():
            with contextlib.suppress(TooManyAttempts):
                send_verification(checked.user, by_owner=True)
        db.session.commit()  # the failure forgiven, the re-hash kept, the link queued
        events.record("login_refused", user_id=user_id, reason="email_not_verified")
        raise EmailNotVerified()
    try:
        amr = second_factor.login_methods(checked.user, otp=otp, recovery_code=recovery_code)
    except (MfaRequired, MfaUnavailable) as refused:
        login_failures.forgive(reservation)  # the password was right
        db.session.commit()
        reason = "mfa_required" if isinstance(refused, MfaRequired) else "mfa_unavailable"
        events.record("login_refused", user_id=user_id, reason=reason)
        raise
    except InvalidOtp:
        events.record("login_failed", warning=True, user_id=user_id, reason="wrong_code")
        raise  # its reservation stays: a failed login
    login_failures.forgive(reservation)
    return Login(user=checked.user, device_id=device_id or uuid.uuid4(), known_device=device_id is not None, amr=amr)


# How many times a password is checked against a hash that keeps changing meanwhile.
CHECKS = 3


@dataclass(frozen=True)
class _Checked:
    matches: bool
    stored_hash: str  # the hash the password was last checked against
    user: User | None = None  # the row, locked until the caller's commit; None if deleted meanwhile
    new_hash: str | None = None  # of `replacement`, or the password again when the stored hash is outdated


def _check_then_lock(user_id: int, stored_hash: str, password: str, *, replacement: str | None = None) -> _Checked:
    """Check `password` against `stored_hash` holding no connection, then lock the user's row, unless it changed.

    Hashing takes a while, so the row is read again, locked until the caller
    commits: a password change, deactivation or deletion that committed
    meanwhile wins, and one that comes later waits for this request (a login
    then ends the session it opens). Whatever is to be stored (`replacement`
    hashed, or a re-hash of an outdated hash) is hashed before the lock. If
    the hash changed meanwhile (a password change, or a concurrent login's
    re-hash), the new one is checked; after CHECKS changes, ChangedMeanwhile.
    """
    for _ in range(CHECKS):
        release_connection()
        matches, outdated = verify_password(stored_hash, password)
        if not matches:
            return _Checked(False, stored_hash)
        to_store = replacement if replacement is not None else password if outdated else None
        new_hash = hash_password(to_store) if to_store is not None else None
        user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
        if user is None or user.password_hash == stored_hash:
            return _Checked(True, stored_hash, user, new_hash)
        stored_hash = user.password_hash
    raise ChangedMeanwhile()


@contextlib.contextmanager
def _forgiven_if_not_checked(reservation: int | None):
    """Take the reserved failure back if the password was never checked: its hash waited too long, or kept changing."""
    try:
        yield
    except (HashingBusy, ChangedMeanwhile):
        login_failures.forgive(reservation)
        db.session.commit()
        raise


def hash_new_password(password: str) -> str:
    """Hash a password to store, with a place in the hashing queue and no database connection held."""
    with hashing_turn():
        release_connection()
        return hash_password(password)


def update_profile(*, user: User, changes: dict, keep: uuid.UUID) -> User:
    """The owner's change of `name` and `email`; a new address needs `current_password` (as a password change does).

    The caller commits. A wrong current password counts as a failed login, in
    the allowance of the session `keep`.
    """
    if "email" in changes and _is_new_address(user.email, changes["email"]):
        if "current_password" not in changes:
            raise InvalidInput(
                "Changing the e-mail address needs the current password.",
                fields={"current_password": "Required to change the e-mail address."},
            )
        checked = _check_current_password(user, changes["current_password"], keep=keep)
        user = cast(User, checked.user)
        if checked.new_hash is not None:  # an outdated hash, re-hashed while it was checked
            user.password_hash = checked.new_hash
    if "name" in changes:
        user.name = changes["name"]
    if "email" in changes:
        _set_email(user, changes["email"], by_owner=True)
    db.session.flush()
    return user


def _is_new_address(old: str | None, new: str | None) -> bool:
    return (old or "").lower() != (new or "").lower()


def _check_current_password(user: User, current: str, *, keep: uuid.UUID, replacement: str | None = None) -> _Checked:
    """Check the owner's current password, then lock their row (WrongCurrentPassword, SessionEnded).

    A wrong one counts as a failed login (LOGIN_FAILURE_LIMIT), in the
    allowance of the session `keep`: strangers who spent the username's
    cannot stop its owner, and a stolen token still guesses slowly. No
    database connection is held while the passwords are hashed.
    """
    user_id, stored_hash = user.id, user.password_hash
    with hashing_turn():
        reservation = login_failures.reserve(user.username, bucket=keep)
        with _forgiven_if_not_checked(reservation):
            checked = _check_then_lock(user_id, stored_hash, current, replacement=replacement)
    if not checked.matches:
        login_failures.weigh(reservation, check_cost(checked.stored_hash))  # as for a login
        raise WrongCurrentPassword()
    # The row is locked now: a deletion, deactivation or logout that came while the passwords were hashed wins.
    if checked.user is None or find_live_user(user_id=user_id, session_id=keep) is None:
        raise SessionEnded()
    login_failures.forgive(reservation)
    return checked


def change_password(*, user: User, current: str, new: str, keep: uuid.UUID) -> None:
    """Set a new password after checking the current one, and end every session but `keep`; the caller commits."""
    problem = password_problem(new, username=user.username)
    if problem:
        raise PasswordRefused("The new password is refused.", fields={"new_password": problem})
    checked = _check_current_password(user, current, keep=keep, replacement=new)
    user = cast(User, checked.user)
    user.password_hash = cast(str, checked.new_hash)  # a replacement was given: it was hashed
    db.session.flush()  # the row before the sessions: see update_user
    ended = end_sessions(user_id=user.id, keep=keep)
    events.record("sessions_ended", user_id=user.id, sessions=ended, changed=["password"], by_owner=True)
    notices.password_changed_notice(user)


def turn_off_second_factor(*, user: User, password: str, code: str, keep: uuid.UUID) -> None:
    """The owner turns their factor off with their password and a code (TOTP or recovery); the caller commits.

    A wrong password or code counts as a failed login in the allowance of the
    session `keep`, as a wrong current password does.
    """
    if not user.mfa:
        raise MfaNotEnabled()
    try:
        checked = _check_current_password(user, password, keep=keep)
    except WrongCurrentPassword:
        raise WrongCurrentPassword(fields={"password": "Wrong password."}) from None
    user = cast(User, checked.user)
    try:
        second_factor.check_code(user, code)
    except WrongCode:
        # Undoes the password check's forgiveness: its reserved failure stays, and so a wrong code counts.
        db.session.rollback()
        raise
    second_factor.remove(user)
    events.record("mfa_disabled", user_id=user.id, by_owner=True)
    notices.mfa_notice(user, enabled=False)


def remove_second_factor(*, user: User) -> None:
    """An admin removes the user's factor (MfaNotEnabled if none): their sessions end, and they are told."""
    second_factor.remove(user)
    db.session.flush()  # the row before the sessions: see update_user
    ended = end_sessions(user_id=user.id)
    events.record("mfa_disabled", user_id=user.id, by_owner=False)
    events.record("sessions_ended", user_id=user.id, sessions=ended, changed=["mfa"])
    notices.mfa_notice(user, enabled=False, by_admin=True)


def list_users(
    *, page: int, per_page: int, prefix: str | None = None, role: str | None = None, active: bool | None = None
) -> tuple[list[User], int]:
    """One page of users by id, and how many match in all."""
    query = db.select(User)
    if prefix:
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(User.username).like(f"{escaped}%", escape="\\"))
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.is_active == active)
    total = db.session.execute(db.select(func.count()).select_from(query.subquery())).scalar_one()
    offset = (page - 1) * per_page
    if offset >= total:  # past the end (and no OFFSET too large for PostgreSQL)
        return [], total
    items = db.session.execute(query.order_by(User.id).limit(per_page).offset(offset)).scalars()
    return list(items), total


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NoSuchUser()
    return user


def update_user(*, user: User, changes: dict) -> User:
    """An admin's change of `name`, `email`, `role`, `is_active` or `password`; the caller commits.

    Deactivating a user, or changing their role or password, ends their
    sessions, so that their tokens stop (and new ones carry the new role).
    """
    new_hash = None
    if "password" in changes:
        problem = password_problem(changes["password"], username=user.username)
        if problem:
            raise PasswordRefused("The password is refused.", fields={"password": problem})
        user_id = user.id
        new_hash = hash_new_password(changes["password"])
        fresh = db.session.get(User, user_id)
        if fresh is None:  # deleted meanwhile
            raise NoSuchUser()
        user = fresh
    if not is_active_admin(changes.get("role", user.role), changes.get("is_active", user.is_active)):
        ensure_another_admin_remains(user)
    ends_sessions = (
        changes.get("role", user.role) != user.role
        or changes.get("is_active", user.is_active) != user.is_active
        or "password" in changes
    )
    previous_role = user.role
    if new_hash is not None:
        user.password_hash = new_hash
    for field in ("name", "role", "is_active"):
        if field in changes:
            setattr(user, field, changes[field])
    if "email" in changes:
        _set_email(user, changes["email"])
    # The row first: a login in progress holds it locked (see authenticate),
    # so this waits for it, and the sessions ended next include its session.
    db.session.flush()
    if "role" in changes and changes["role"] != previous_role:
        events.record("role_changed", user_id=user.id, role=user.role)
    if ends_sessions:
        ended = end_sessions(user_id=user.id)
        reasons = [name for name in ("role", "is_active", "password") if name in changes]
        events.record("sessions_ended", user_id=user.id, sessions=ended, changed=reasons)
    if "password" in changes:
        notices.password_changed_notice(user)
    return user


def delete_user(*, user: User) -> None:
    """Delete a user; their sessions go with them (ON DELETE CASCADE). The caller commits."""
    ensure_another_admin_remains(user)
    events.record("user_deleted", user_id=user.id)
    db.session.delete(user)
    db.session.flush()


def legacy_hash_users() -> list[User]:
    """The users whose password hash is still Werkzeug's: slower to check, so timing tells them apart."""
    legacy = db.or_(*(User.password_hash.startswith(prefix, autoescape=True) for prefix in LEGACY_PREFIXES))
    return list(db.session.execute(db.select(User).where(legacy).order_by(User.id)).scalars())


def expire_legacy_hashes() -> list[User]:
    """Replace every legacy hash with one no password matches, and end those users' sessions; the caller commits.

    They log in again once an admin sets a new password (`flask users reset-password`).
    """
    users = legacy_hash_users()
    for user in users:
        user.password_hash = EXPIRED_HASH
        db.session.flush()  # the row before the sessions: see update_user
        ended = end_sessions(user_id=user.id)
        events.record("sessions_ended", user_id=user.id, sessions=ended, changed=["legacy_hash_expired"])
    return users
