"""Login sessions: one per login, named by the `sid` claim of its tokens."""

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import func

from .extensions import db
from .models import LoginSession, User


def start_session(*, user: User) -> LoginSession:
    """Open a session for `user` that lives as long as its refresh token."""
    lifetime: timedelta = current_app.config["JWT_REFRESH_TOKEN_EXPIRES"]
    login_session = LoginSession(user_id=user.id, expires_at=func.now() + lifetime)
    db.session.add(login_session)
    db.session.flush()
    return login_session


def find_live_user(*, user_id: str, session_id: str) -> User | None:
    """The user of a live session, or None when the session or the user is not live.

    This runs on every guarded request, so it is one query, by primary keys.
    """
    try:
        uid, sid = int(user_id), uuid.UUID(session_id)
    except (TypeError, ValueError):
        return None
    return db.session.execute(
        db.select(User)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            User.id == uid,
            User.is_active,
            LoginSession.id == sid,
            LoginSession.ended_at.is_(None),
            LoginSession.expires_at > func.now(),
        )
    ).scalar_one_or_none()
