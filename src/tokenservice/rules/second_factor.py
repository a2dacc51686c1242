"""A second factor: TOTP (RFC 6238, with pyotp) and ten single-use recovery codes (docs/second-factor.md).

Enrolment stores a new secret; the factor is on only once a code made from
it is confirmed, which also gives the ten recovery codes, shown that once.

Secrets are encrypted at rest with PyNaCl's SecretBox under a key derived
from MFA_KEY, the user's id sealed in beside the secret: a database dump
alone does not give the codes away, and a secret copied onto another user's
row does not open there.

A code is accepted within one time step of clock drift either side, and for
each time step at most once, across workers and instances: accepting it is
one `UPDATE users SET totp_last_step = :step WHERE totp_last_step < :step`,
so of two requests with the same code one wins, and a code older than the
last one accepted is refused too. A recovery code is 80 random bits, stored
as its SHA-256 (a slow hash would add nothing: there is no dictionary of
likely codes to try), and used by one `UPDATE ... WHERE used_at IS NULL`.
"""

import base64
import functools
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
from flask import Flask, current_app
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..storage.database import changed_rows
from ..storage.extensions import db
from ..storage.models import RecoveryCode, User
from . import events, notices
from .exceptions import InvalidOtp, MfaAlreadyEnabled, MfaNotEnabled, MfaRequired, MfaUnavailable, WrongCode

# RFC 8176's authentication method references, as tokens carry them in `amr`.
PWD = "pwd"  # noqa: S105 (a method's name, not a password)
OTP = "otp"  # a TOTP code or a recovery code (itself a one-time password)
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_CODE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class Enrolment:
    secret: str  # base32, for typing into an authenticator app
    uri: str  # otpauth://totp/...
    qr_svg: str  # the URI as a QR code, an <svg> element


def start_enrolment(user: User) -> Enrolment:
    """Store a new secret for the user, not yet on (MfaAlreadyEnabled if a factor is on); the caller commits."""
    box = _box()
    secret = pyotp.random_base32()
    # One statement that checks and writes: a confirmation committing meanwhile keeps the secret it confirmed.
    stored = update(User).where(User.id == user.id, User.totp_enabled_at.is_(None))
    stored = stored.values(totp_secret=_seal(box, user.id, secret), totp_last_step=None)
    if not changed_rows(stored.execution_options(synchronize_session="fetch")):
        raise MfaAlreadyEnabled()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=current_app.config["TOTP_ISSUER"])
    import segno  # only enrolment draws a QR code: not in every worker's memory from the start (0.8 MB)

    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="Scan with an authenticator app")
    events.record("mfa_enrolment_started", user_id=user.id)
    return Enrolment(secret=secret, uri=uri, qr_svg=qr_svg)


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn the factor on with a code from the new secret (WrongCode); its new recovery codes. The caller commits."""
    if user.mfa:
        raise MfaAlreadyEnabled()
    if user.totp_secret is None:
        raise MfaNotEnabled()
    if not _accept_code(user, code):
        raise WrongCode()
    user.totp_enabled_at = func.now()
    codes = new_recovery_codes(user)
    events.record("mfa_enabled", user_id=user.id)
    notices.mfa_notice(user, enabled=True)
    return codes


def login_methods(user: User, *, otp: str | None, recovery_code: str | None) -> list[str]:
    """How a login with the right password proves itself (its `amr`), or MfaRequired, or InvalidOtp.

    Called with the user's row locked (users.authenticate). A user without a
    factor needs neither code (one sent is ignored).
    """
    if not user.mfa:
        return [PWD]
    if otp is None and recovery_code is None:
        raise MfaRequired()
    if otp is not None and _accept_code(user, otp):
        return [PWD, OTP]
    if recovery_code is not None and _use_recovery_code(user, recovery_code):
        events.record("recovery_code_used", user_id=user.id, left=recovery_codes_left(user))
        return [PWD, OTP]
    raise InvalidOtp()


def check_code(user: User, code: str) -> None:
    """A TOTP code or a recovery code of the user's factor, used up (MfaNotEnabled, WrongCode)."""
    if not user.mfa:
        raise MfaNotEnabled()
    if not (_accept_code(user, code) or _use_recovery_code(user, code)):
        raise WrongCode()


def remove(user: User) -> None:
    """Turn the user's factor off, or drop an enrolment never confirmed, and forget its secret and recovery codes
    (MfaNotEnabled when there is neither); the caller commits."""
    if user.totp_secret is None:
        raise MfaNotEnabled()
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    _forget_recovery_codes(user)


def renew_recovery_codes(user: User) -> list[str]:
    """New recovery codes for a user whose factor is on (MfaNotEnabled); the old ones stop. The caller commits."""
    if not user.mfa:
        raise MfaNotEnabled()
    events.record("recovery_codes_renewed", user_id=user.id)
    return new_recovery_codes(user)


def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODES new ones, returned this once; the caller commits."""
    _forget_recovery_codes(user)
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_code_hash(code)) for code in codes)
    return codes


def recovery_codes_left(user: User) -> int:
    unused = select(func.count()).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    return db.session.execute(unused).scalar_one()


def key_problem(app: Flask) -> str | None:
    """At start: why the service must not serve (factors on, and MFA_KEY missing or not theirs), or None.

    Enrolments never confirmed do not count: the next start of enrolment replaces their secret.

    A database that cannot be reached, or not migrated yet, is no reason: the
    start goes on, and a factor that cannot be opened answers 503 mfa_unavailable.
    """
    with app.app_context():
        try:
            stored = db.session.execute(
                select(User.id, User.totp_secret).where(User.totp_enabled_at.is_not(None)).limit(1)
            ).one_or_none()
        except (OperationalError, ProgrammingError):
            return None
        finally:
            db.session.remove()
        if stored is None:
            return None
        key = app.config["MFA_KEY"]
        if key is None:
            return (
                "MFA_KEY is required: users have second factors, whose secrets are encrypted under it; "
                "set it to the key they were stored with."
            )
        try:
            _open(_box_for(key), stored.id, stored.totp_secret)
        except MfaUnavailable:
            return "MFA_KEY does not open the stored second factors: set it to the key they were stored with."
    return None


def _accept_code(user: User, code: str) -> bool:
    """Whether `code` is the secret's code for a step within the drift, not older than the last one accepted."""
    code = re.sub(r"\s", "", code) if isinstance(code, str) else ""  # "123 456", as an app may show it
    if not _CODE.fullmatch(code) or user.totp_secret is None:
        return False
    totp = pyotp.TOTP(_open(_box(), user.id, user.totp_secret))
    now = totp.timecode(time.time())
    matching = [
        step
        for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1)
        if hmac.compare_digest(totp.generate_otp(step), code)
    ]
    if not matching:
        return False
    step = matching[-1]
    newer = or_(User.totp_last_step.is_(None), User.totp_last_step < step)
    # updated_at kept: using a code is no change to the account.
    accept = update(User).where(User.id == user.id, newer).values(totp_last_step=step, updated_at=User.updated_at)
    accepted = changed_rows(accept.execution_options(synchronize_session="fetch"))
    return accepted == 1


def _forget_recovery_codes(user: User) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def _use_recovery_code(user: User, code: str) -> bool:
    unused = (
        RecoveryCode.user_id == user.id,
        RecoveryCode.code_hash == _code_hash(code),
        RecoveryCode.used_at.is_(None),
    )
    return changed_rows(update(RecoveryCode).where(*unused).values(used_at=func.now())) == 1


def _new_recovery_code() -> str:
    letters = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits, 16 letters and digits
    return "-".join(letters[i : i + 4] for i in range(0, 16, 4))


def _code_hash(code: str) -> bytes:
    """Of the code as typed, without case, dashes or spaces."""
    return hashlib.sha256(re.sub(r"[\s-]", "", str(code)).lower().encode()).digest()


def _box() -> SecretBox:
    key = current_app.config["MFA_KEY"]
    if key is None:
        raise MfaUnavailable()
    return _box_for(key)


@functools.cache
def _box_for(key: str) -> SecretBox:
    # A key of its own (BLAKE2b, personalised), so that it is never a key anything else uses.
    return SecretBox(hashlib.blake2b(key.encode(), digest_size=SecretBox.KEY_SIZE, person=b"tokenservice-mfa").digest())


def _seal(box: SecretBox, user_id: int, secret: str) -> bytes:
    return bytes(box.encrypt(f"{user_id}:{secret}".encode()))


def _open(box: SecretBox, user_id: int, sealed: bytes) -> str:
    try:
        owner, _, secret = box.decrypt(bytes(sealed)).decode().partition(":")
    except CryptoError:
        message = "This account's second factor cannot be read: MFA_KEY is not the key it was stored with."
        raise MfaUnavailable(message) from None
    if owner != str(user_id):
        raise MfaUnavailable("This account's second factor was stored for another account.")
    return secret
