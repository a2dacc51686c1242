from flask_jwt_extended import current_user

from ...rules.verification import send_verification, verify_email
from ...storage.extensions import db
from ..guards import ACCESS_TOKEN, ANYONE
from ..openapi import Blueprint, errors
from ..rate_limits import per_address
from ..request_checks import JSON, accepts
from ..schemas import AcceptedSchema, LinkTokenSchema

bp = Blueprint("email_verification", __name__, description="Verifying an e-mail address by the link mailed to it")


@bp.route("/me/email/verify", methods=["POST"], guard=ACCESS_TOKEN)
@errors(409, 429, 503)
@bp.response(202, AcceptedSchema)
def resend_verification():
    """Mail the caller's address its verification link again (at most MAIL_RATE_LIMIT)."""
    send_verification(current_user, by_owner=True)
    db.session.commit()
    return {"message": "A verification link is on its way to the account's e-mail address."}


@bp.route("/email/verify", methods=["POST"], guard=ANYONE)
@per_address
@accepts(JSON)
@bp.arguments(LinkTokenSchema)
@errors(415)
@bp.response(204)
def verify_address(data):
    """Mark an address verified with the token of the link mailed to it (once)."""
    verify_email(token=data["token"])
    db.session.commit()
