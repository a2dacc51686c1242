from ...rules.signin_alerts import end_alerted_session
from ...storage.extensions import db
from ..guards import ANYONE
from ..openapi import Blueprint, errors
from ..rate_limits import per_address
from ..request_checks import JSON, accepts
from ..schemas import EndAlertedSessionSchema

bp = Blueprint("signin_alerts", __name__, description="A sign-in alert's \"this wasn't me\" link")


@bp.route("/signin-alerts/end-session", methods=["POST"], guard=ANYONE)
@per_address
@accepts(JSON)
@bp.arguments(EndAlertedSessionSchema)
@errors(415)
@bp.response(204)
def end_session_from_alert(data):
    """End the sign-in a new-device alert told of (and, `everywhere`, every other), with its token, once."""
    end_alerted_session(token=data["token"], everywhere=data["everywhere"])
    db.session.commit()
