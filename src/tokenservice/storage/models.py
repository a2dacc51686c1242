"""The tables: users and their recovery codes, login sessions, clients and their tokens, link tokens, the outbox."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import Model

USER = "user"
ADMIN = "admin"
ROLES = (USER, ADMIN)

# Case-insensitive uniqueness enforced by the database, so that two concurrent
# registrations of "Alice" and "alice" cannot both win (users.create_user).
USERNAME_INDEX = "uq_users_username_lower"
EMAIL_INDEX = "uq_users_email_lower"  # the same for e-mail addresses


class User(Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN ({', '.join(map(repr, ROLES))})", name="ck_users_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), server_default=USER)
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    password_hash: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(server_default=text("false"))
    # A second factor (rules/second_factor.py): the TOTP secret, encrypted under MFA_KEY; on once confirmed
    # (`totp_enabled_at`); the last time step a code was accepted for, so that no code is accepted twice.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    @property
    def mfa(self) -> bool:
        """Whether a second factor is on."""
        return self.totp_enabled_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


Index(USERNAME_INDEX, func.lower(User.username), unique=True)
Index(EMAIL_INDEX, func.lower(User.email), unique=True)


class LoginSession(Model):
    """One login and the refresh chain that follows it: the `sid` claim.

    A session has exactly one live refresh token (`refresh_jti`, expiring at
    `expires_at`, which is also when the session expires). Refreshing retires
    it into `previous_refresh_jti` at `rotated_at` (the database's clock).
    Whether a session is live is decided in one place: sessions.LIVE.
    """

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    refresh_jti: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4)
    previous_refresh_jti: Mapped[uuid.UUID | None]
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where it is used: its last login or refresh (GET /me/sessions).
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    # How the login proved itself (RFC 8176): "pwd", and "otp" after a second factor; every token of it says so.
    amr: Mapped[list[str]] = mapped_column(ARRAY(String(8)), server_default=text("'{pwd}'"))


class RecoveryCode(Model):
    """One of a user's ten recovery codes, stored only as its SHA-256, used once (rules/second_factor.py)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailure(Model):
    """A failed login (or one in progress: login_failures.reserve) for a username, by its SHA-256.

    `bucket` is whose allowance it drew on: None for strangers, else the
    device or session that proved itself (rules/login_failures.py).
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_username_key_failed_at", "username_key", "failed_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    bucket: Mapped[uuid.UUID | None]


class LinkToken(Model):
    """The token of a link mailed to a user (a password reset, an address to verify), stored only as its SHA-256.

    Used once (`used_at`), until `expires_at`. A reset token is bound to the
    password hash it was issued under (`password_fingerprint`), so any
    password change kills it; a verification token to the address it was sent
    to (`email`); a sign-in alert's token to the session it can end
    (`session_id`). rules/link_tokens.py.
    """

    __tablename__ = "link_tokens"
    __table_args__ = (
        Index("ix_link_tokens_session_id", "session_id", postgresql_where=text("session_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    password_fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxItem(Model):
    """Work for the mail sender, written in the transaction of the change that causes it (mail/sender.py).

    `kind` says what: a mail to send (`payload`: to, subject, text, html), or
    a password-reset request to look into after the request has been answered
    (`payload`: the username or address as typed). A sender claims a due item
    by setting `claimed_until`; `attempts` count its tries; `done_at` is when it
    was sent or handled, `gave_up_at` when it was given up. A mail's payload
    is emptied once it is done or given up: the link in it lives no longer
    than it must.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "due_at", postgresql_where=text("done_at IS NULL AND gave_up_at IS NULL")),
        Index("ix_outbox_user_kind_created", "user_id", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    payload: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gave_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiClient(Model):
    """A machine's credentials (rules/clients.py): its secret stored only as SHA-256, its scopes."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the client_id, "tsc_..."
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClientToken(Model):
    """One access token of a client (its `sid`): live until it expires or ends (/revoke, the client disabled)."""

    __tablename__ = "client_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
