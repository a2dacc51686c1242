import uuid

from flask_jwt_extended import get_jwt, get_jwt_identity

from ...rules.sessions import end_session, list_sessions
from ...rules.users import get_user
from ...storage.extensions import db
from ...tokens.claims import read_claims
from ..guards import ACCESS_TOKEN, ADMIN
from ..openapi import Blueprint, errors
from ..schemas import SessionListSchema

bp = Blueprint("sessions", __name__, description="Where an account is signed in, and ending one sign-in")


@bp.route("/me/sessions", methods=["GET"], guard=ACCESS_TOKEN)
@bp.response(200, SessionListSchema)
def my_sessions():
    """The caller's live sessions, the most recently used first; `current` marks the one of this token."""
    return _listed(int(get_jwt_identity()), current=read_claims(get_jwt()).session_id)


@bp.route("/me/sessions/<uuid:session_id>", methods=["DELETE"], guard=ACCESS_TOKEN)
@errors(404)
@bp.response(204)
def end_my_session(session_id: uuid.UUID):
    """End one of the caller's sessions (its tokens stop on every worker within a second); another's is a 404."""
    end_session(user_id=int(get_jwt_identity()), session_id=session_id)
    db.session.commit()


@bp.route("/users/<int:user_id>/sessions", methods=["GET"], guard=ADMIN)
@errors(404)
@bp.response(200, SessionListSchema)
def user_sessions(user_id: int):
    """A user's live sessions, the most recently used first."""
    return _listed(get_user(user_id).id, current=read_claims(get_jwt()).session_id)


@bp.route("/users/<int:user_id>/sessions/<uuid:session_id>", methods=["DELETE"], guard=ADMIN)
@errors(404)
@bp.response(204)
def end_user_session(user_id: int, session_id: uuid.UUID):
    """End one of a user's sessions."""
    end_session(user_id=get_user(user_id).id, session_id=session_id)
    db.session.commit()


def _listed(user_id: int, *, current: uuid.UUID) -> dict:
    sessions = list_sessions(user_id=user_id)
    return {"items": [{**_fields(one), "current": one.id == current} for one in sessions]}


def _fields(one) -> dict:
    return {name: getattr(one, name) for name in ("id", "created_at", "last_used_at", "ip", "user_agent")}
