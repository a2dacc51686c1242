from sqlalchemy import text

from ..errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, APIError
from ..extensions import Blueprint, db
from ..openapi import errors
from ..schemas import HealthSchema

bp = Blueprint("health", __name__, description="Liveness and database reachability")


@bp.route("/health", methods=["GET"])
@errors(503)
@bp.response(200, HealthSchema)
def health():
    """Say whether the service and its database answer."""
    try:
        db.session.execute(text("SELECT 1"))
    except DATABASE_UNAVAILABLE:
        raise APIError(
            503,
            "service_unavailable",
            "The service cannot reach its database; try again shortly.",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
            extra={"status": "degraded", "database": "unavailable"},
        ) from None
    return {"status": "ok", "database": "ok"}
