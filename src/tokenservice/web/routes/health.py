from sqlalchemy import text

from ...rules.exceptions import DatabaseUnavailable
from ...storage.database import DATABASE_UNAVAILABLE
from ...storage.extensions import db
from ..guards import ANYONE
from ..openapi import Blueprint, errors
from ..schemas import HealthSchema

bp = Blueprint("health", __name__, description="Liveness and database reachability")


@bp.route("/health", methods=["GET"], guard=ANYONE)
@errors(503)
@bp.response(200, HealthSchema)
def health():
    """Say whether the service and its database answer."""
    try:
        db.session.execute(text("SELECT 1"))
    except DATABASE_UNAVAILABLE:
        raise DatabaseUnavailable(details={"status": "degraded", "database": "unavailable"}) from None
    return {"status": "ok", "database": "ok"}
