from flask import request
from flask_jwt_extended import current_user, get_jwt, get_jwt_identity

from ...rules.users import change_password, update_profile
from ...storage.extensions import db
from ...tokens.claims import read_claims
from ..guards import ACCESS_TOKEN
from ..openapi import Blueprint, errors
from ..rate_limits import spend
from ..request_checks import JSON, accepts
from ..schemas import PasswordChangeSchema, ProfileUpdateSchema, ProtectedSchema, UserSchema

bp = Blueprint("me", __name__, description="The caller's own account")


@bp.route("/me", methods=["GET"], guard=ACCESS_TOKEN)
@bp.response(200, UserSchema)
def show_me():
    """Show the caller's account."""
    return current_user


@bp.route("/me", methods=["PATCH"], guard=ACCESS_TOKEN)
@accepts(JSON)
@bp.arguments(ProfileUpdateSchema)
@errors(409, 415, 429, 503)
@bp.response(200, UserSchema)
def update_me(changes):
    """Change the caller's display name or e-mail address (which needs `current_password`, and is mailed a link)."""
    user = update_profile(user=current_user, changes=changes, keep=read_claims(get_jwt()).session_id)
    db.session.commit()
    return user


@bp.route("/me/password", methods=["POST"], guard=ACCESS_TOKEN)
@accepts(JSON)
@bp.arguments(PasswordChangeSchema)
@errors(409, 415, 429)
@bp.response(204)
def change_my_password(data):
    """Change the caller's password; every other session of theirs ends."""
    spend("PASSWORD_CHANGE_RATE_LIMIT", account=get_jwt_identity(), address=request.remote_addr)
    change_password(
        user=current_user,
        current=data["current_password"],
        new=data["new_password"],
        keep=read_claims(get_jwt()).session_id,
    )
    db.session.commit()


@bp.route("/protected", methods=["GET"], guard=ACCESS_TOKEN)
# Documented but not serialised by flask-smorest: its response wrapper cost
# about a tenth of this hot route's time (measured in-process when it was added).
@bp.alt_response(200, schema=ProtectedSchema, description="The caller's id and username.")
def protected():
    """The classic Flask-JWT-Extended example of a guarded route: the caller's id and username."""
    return {"id": int(get_jwt_identity()), "username": current_user.username}
