"""Login sessions: opening, checking, refreshing and ending them.

A session is one login and the refresh chain that follows it; its id is
the `sid` claim of every token it issues. Ending a session stops its access
and refresh tokens at once, because every guarded request checks that its
session is live (`find_live_user`).
"""

import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, has_app_context
from sqlalchemy import and_, func, not_, text, update
from sqlalchemy.orm import Session, make_transient_to_detached

from ..storage.database import changed_rows
from ..storage.extensions import db
from ..storage.models import LoginSession, User
from . import events
from .exceptions import NoSuchSession, RefreshTokenReused, SessionEnded, TokenExpired
from .second_factor import PWD

# A session is live until it ends (logout, reuse, a password change, an
# admin's change) or expires; its tokens work while it is live and its user
# is active (LIVE_USER). The per-request check says the same in SQL, in the
# plpgsql function LIVE_SESSION_USER (migration 0003); a test proves the two agree.
LIVE = and_(LoginSession.ended_at.is_(None), LoginSession.expires_at > func.now())
LIVE_USER = and_(LIVE, User.is_active)
LIVE_SESSION_USER = "live_session_user"


MAX_USER_AGENT = 200


@dataclass(frozen=True)
class Client:
    """Who is on the other end, as the service sees it: the address (as the rate limits see it) and User-Agent."""

    ip: str | None = None
    user_agent: str | None = None

    def address(self) -> str | None:
        """The address if it is an IP address (what a proxy forwarded need not be), else None."""
        try:
            return str(ipaddress.ip_address(self.ip)) if self.ip else None
        except ValueError:
            return None

    def bounded_user_agent(self) -> str | None:
        """Printable characters only, at most MAX_USER_AGENT of them."""
        if not self.user_agent:
            return None
        return "".join(c if c.isprintable() else "?" for c in self.user_agent[:MAX_USER_AGENT])


def start_session(*, user: User, client: Client = Client(), amr: list[str] | None = None) -> LoginSession:
    """Open a session for `user` that lives as long as its refresh token; `amr`: how its login proved itself."""
    login_session = LoginSession(
        user_id=user.id,
        expires_at=_refresh_expiry(),
        ip=client.address(),
        user_agent=client.bounded_user_agent(),
        amr=amr or [PWD],
    )
    db.session.add(login_session)
    db.session.flush()
    return login_session


def list_sessions(*, user_id: int) -> list[LoginSession]:
    """The user's live sessions, the most recently used first."""
    query = db.select(LoginSession).where(LoginSession.user_id == user_id, LIVE)
    return list(db.session.execute(query.order_by(LoginSession.last_used_at.desc())).scalars())


def is_current_refresh_token(*, user_id: int, session_id: uuid.UUID, jti: uuid.UUID) -> bool:
    """Whether `jti` is the live refresh token of a live session of an active user."""
    query = (
        db.select(LoginSession.id)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.id == session_id, LoginSession.user_id == user_id, LoginSession.refresh_jti == jti)
        .where(LIVE_USER)
    )
    return db.session.execute(query).first() is not None


def end_session(*, user_id: int, session_id: uuid.UUID) -> None:
    """End one live session of the user (NoSuchSession when there is none: another user's is none); caller commits."""
    if not end_sessions(user_id=user_id, session_id=session_id):
        raise NoSuchSession()
    events.record("sessions_ended", user_id=user_id, sessions=1, session_id=session_id, by="session_list")


# A plpgsql function, so that PostgreSQL keeps its plan: planning the join
# afresh on every request cost more than running it. The statement object is
# built once for the same reason.
_LIVE_SESSION_USER_QUERY = db.select(User).from_statement(
    text(f"SELECT * FROM {LIVE_SESSION_USER}(:user_id, :session_id)")  # noqa: S608 (a constant name)
)


def find_live_user(*, user_id: int, session_id: uuid.UUID, claims: Mapping | None = None) -> User | None:
    """The user of a live session, or None when the session or the user is not live.

    This runs on every guarded request, so it is one query, by primary keys:
    the session must not have ended or expired, and the user must be active.
    Given the token's `claims`, the answer may come from this worker's memory
    of live sessions (tokens/session_cache.py) instead: a detached copy of the user.
    """
    params = {"user_id": user_id, "session_id": session_id}

    def query():
        return db.session.execute(_LIVE_SESSION_USER_QUERY, params).scalar_one_or_none()

    cache = current_app.extensions.get("session_cache")
    if cache is None or claims is None or "iat" not in claims:  # no iat: no bound on the session's expiry
        return query()
    return cache.lookup(user_id, session_id, _known_live_until(claims), query, _detached_copy)


def forget_changed_users(session: Session, flush_context) -> None:
    """A user changed or deleted in this worker is forgotten at once; other workers hear of it at commit."""
    cache = current_app.extensions.get("session_cache") if has_app_context() else None
    if cache is not None:
        for changed in (*session.dirty, *session.deleted):
            if isinstance(changed, User):
                cache.forget_user(changed.id)


def _known_live_until(claims: Mapping) -> float:
    """Until when a token's session stays live unless it ends: its expiry only moves later.

    The token's own expiry, or the session's as it was when the token was
    issued: refresh expiry after `iat`, less the reuse window (a token
    re-issued in it does not move the session's expiry) and a second of
    rounding each side.
    """
    config = current_app.config
    reissue_slack = config["JWT_REFRESH_REUSE_WINDOW"].total_seconds() + 2
    return min(claims["exp"], claims["iat"] + config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds() - reissue_slack)


def _detached_copy(user: User) -> User:
    """The user's columns in an instance of no session, safe to share between requests that only read it."""
    copy = User(**{column.key: getattr(user, column.key) for column in User.__mapper__.column_attrs})
    make_transient_to_detached(copy)
    return copy


def refresh_session(
    *, user_id: int, session_id: uuid.UUID, jti: uuid.UUID, client: Client = Client()
) -> tuple[User, LoginSession]:
    """Judge a refresh token (its verified claims: user, session, jti); rotate the session or end it.

    - the session's live refresh token: it is retired and a new one made;
    - the one retired last, within JWT_REFRESH_REUSE_WINDOW of its rotation
      (two tabs refreshing at once): the session is returned unchanged, so the
      caller re-issues the current refresh token rather than a new branch;
    - anything else is reuse of a stolen token: the session ends (committed
      here, since the caller's request fails) and the token is refused.

    The session row is locked (SELECT ... FOR UPDATE), so concurrent refreshes
    of one session, in any worker or instance, are judged one at a time.
    """
    window = current_app.config["JWT_REFRESH_REUSE_WINDOW"]
    row = db.session.execute(
        db.select(
            LoginSession,
            User,
            LIVE_USER.label("live"),
            # clock_timestamp(), not now(): now() is when this transaction
            # began, possibly before it waited for the lock.
            (func.clock_timestamp() - LoginSession.rotated_at <= window).label("in_window"),
        )
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.id == session_id, LoginSession.user_id == user_id)
        .with_for_update(of=LoginSession)
    ).one_or_none()
    if row is None or not row.live:
        raise SessionEnded()
    login_session, user = row.LoginSession, row.User

    if jti == login_session.refresh_jti:
        login_session.previous_refresh_jti = login_session.refresh_jti
        login_session.refresh_jti = uuid.uuid4()
        login_session.rotated_at = login_session.last_used_at = func.clock_timestamp()
        login_session.expires_at = _refresh_expiry()
        login_session.ip, login_session.user_agent = client.address(), client.bounded_user_agent()
        db.session.flush()
        return user, login_session
    if jti == login_session.previous_refresh_jti and row.in_window:
        return user, login_session

    login_session.ended_at = func.now()
    db.session.commit()
    events.record("refresh_token_reused", warning=True, user_id=user.id, session_id=login_session.id)
    raise RefreshTokenReused()


def check_logout(*, everywhere: bool, token_expired: bool) -> None:
    """Refuse (TokenExpired) to end every session for a token that has expired, before anything else is done.

    An old token that leaked must not be a lasting "log this user out
    everywhere" button; one session ends with any token of it, even expired.
    """
    if everywhere and token_expired:
        raise TokenExpired("Ending every session needs a token that has not expired: refresh it, then try again.")


def log_out(*, user_id: int, session_id: uuid.UUID, everywhere: bool) -> None:
    """End the token's session, then (everywhere) every other session of the user; the caller commits.

    Ending the caller's own session first proves the token's session was
    live: SessionEnded if it had already ended.
    """
    if not end_sessions(user_id=user_id, session_id=session_id):
        raise SessionEnded("The token's session has already ended.")
    if everywhere:
        end_sessions(user_id=user_id)


def end_sessions(*, user_id: int, session_id: uuid.UUID | None = None, keep: uuid.UUID | None = None) -> int:
    """End the user's live sessions: just `session_id`, or all but `keep`, or all.

    The one way sessions end (logout, password change, and the admin's
    deactivation, role and password changes). Returns how many live sessions
    ended; the caller commits.
    """
    statement = update(LoginSession).where(LoginSession.user_id == user_id, LIVE).values(ended_at=func.now())
    if session_id is not None:
        statement = statement.where(LoginSession.id == session_id)
    if keep is not None:
        statement = statement.where(LoginSession.id != keep)
    ended = changed_rows(statement)
    # Other workers hear of it from PostgreSQL at commit (migration 0005); this one forgets at once.
    cache = current_app.extensions.get("session_cache")
    if cache is not None and ended:
        cache.forget_user(user_id)
    return ended


def purge_sessions() -> int:
    """Delete the sessions that can no longer be used (ended or expired).

    One statement, committed at once. Not synchronised with the ORM session:
    since now() cannot be evaluated in Python, SQLAlchemy would fetch every
    deleted id (RETURNING) and keep the transaction open while it reads them:
    7 s and 400 MB for a million rows (tests/perf/bench_scale.py).
    """
    purge = db.delete(LoginSession).where(not_(LIVE)).execution_options(synchronize_session=False)
    deleted = changed_rows(purge)
    db.session.commit()
    return deleted


def _refresh_expiry() -> datetime:
    # Whole seconds, since the refresh token's `exp` claim is this instant.
    now = datetime.now(UTC).replace(microsecond=0)
    return now + current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
