"""The database tables: users and their login sessions."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, LargeBinary, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import Model

USER = "user"
ADMIN = "admin"
ROLES = (USER, ADMIN)

# Case-insensitive uniqueness enforced by the database, so that two concurrent
# registrations of "Alice" and "alice" cannot both win (users.create_user).
USERNAME_INDEX = "uq_users_username_lower"


class User(Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN ({', '.join(map(repr, ROLES))})", name="ck_users_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), server_default=USER)
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"


Index(USERNAME_INDEX, func.lower(User.username), unique=True)


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
