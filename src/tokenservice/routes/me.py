from flask_jwt_extended import current_user, get_jwt_identity, jwt_required

from ..extensions import Blueprint, db
from ..request_guards import JSON, accepts
from ..schemas import ProfileUpdateSchema, ProtectedSchema, UserSchema
from ..users import update_profile

bp = Blueprint("me", __name__, description="The caller's own account")


@bp.route("/me", methods=["GET"])
@jwt_required()
@bp.response(200, UserSchema)
def show_me():
    """Show the caller's account."""
    return current_user


@bp.route("/me", methods=["PATCH"])
@jwt_required()
@accepts(JSON)
@bp.arguments(ProfileUpdateSchema)
@bp.response(200, UserSchema)
def update_me(changes):
    """Change the caller's display name."""
    user = update_profile(user=current_user, changes=changes)
    db.session.commit()
    return user


@bp.route("/protected", methods=["GET"])
@jwt_required()
@bp.response(200, ProtectedSchema)
def protected():
    """The seeds' example of a guarded route."""
    return {"id": int(get_jwt_identity()), "username": current_user.username}
