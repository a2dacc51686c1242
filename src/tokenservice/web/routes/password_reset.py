from ...rules.password_reset import request_reset, reset_password
from ...storage.extensions import db
from ..guards import ANYONE
from ..openapi import Blueprint, errors
from ..rate_limits import per_address
from ..request_checks import JSON, accepts
from ..schemas import AcceptedSchema, ForgotPasswordSchema, PasswordResetSchema

bp = Blueprint("password_reset", __name__, description="Resetting a forgotten password by mail")

# The one answer to every request for a reset, whatever exists (rules/password_reset.py).
ACCEPTED = {"message": "If an account with a verified e-mail address matches, a reset link is on its way to it."}


@bp.route("/password/forgot", methods=["POST"], guard=ANYONE)
@per_address
@accepts(JSON)
@bp.arguments(ForgotPasswordSchema)
@errors(415, 503)
@bp.response(202, AcceptedSchema)
def forgot_password(data):
    """Ask for a reset link by username or e-mail address: the same answer whether or not an account matches."""
    request_reset(username=data.get("username"), email=data.get("email"))
    db.session.commit()
    return ACCEPTED


@bp.route("/password/reset", methods=["POST"], guard=ANYONE)
@per_address
@accepts(JSON)
@bp.arguments(PasswordResetSchema)
@errors(415, 503)
@bp.response(204)
def reset_forgotten_password(data):
    """Set a new password with the token of a reset link (once); every session of the account ends."""
    reset_password(token=data["token"], new_password=data["new_password"])
    db.session.commit()
