from flask import request

from ..errors import APIError
from ..extensions import Blueprint, db
from ..request_guards import FORM, JSON, accepts
from ..schemas import TokenRequestSchema, TokenResponseSchema
from ..sessions import start_session
from ..tokens import issue_tokens
from ..users import authenticate

bp = Blueprint("token", __name__, description="Logging in")


@bp.route("/token", methods=["POST"])
@accepts(JSON, FORM)
@bp.arguments(TokenRequestSchema, location="json_or_form", required=False)
@bp.response(200, TokenResponseSchema)
def create_token(data):
    """Trade a username and password (JSON, form or HTTP Basic) for tokens."""
    if data["grant_type"] != "password":
        raise APIError(400, "unsupported_grant_type", "grant_type must be 'password'.")
    username, password = _credentials(data)
    user = authenticate(username=username, password=password)
    login_session = start_session(user=user)
    tokens = issue_tokens(user=user, login_session=login_session)
    db.session.commit()
    return tokens, {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _credentials(data: dict) -> tuple[str, str]:
    """The body's username and password, or else HTTP Basic's (SPEC 4)."""
    if "username" in data or "password" in data:
        missing = {field: "Missing data for required field." for field in ("username", "password") if field not in data}
        if missing:
            raise APIError(400, "invalid_request", "Some fields are missing or invalid.", fields=missing)
        return data["username"], data["password"]
    basic = request.authorization
    if basic is not None and basic.type == "basic" and basic.username is not None:
        return basic.username, basic.password or ""
    raise APIError(
        400,
        "invalid_request",
        "Send a username and password as JSON, as a form, or with HTTP Basic.",
        fields={"username": "Missing data for required field.", "password": "Missing data for required field."},
    )
