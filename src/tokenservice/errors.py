"""The one error shape, and the handlers that turn everything into it.

Every error leaves as `{"error", "message"[, "fields"]}` (SPEC 5). Views
raise `APIError` or a werkzeug `HTTPException`; the handlers here, the
Flask-JWT-Extended loaders among them, build the JSON. Nothing else does.
"""

from flask import Flask, current_app, jsonify
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import CSRFError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from .extensions import db

RETRY_AFTER_SECONDS = "5"
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)

# RFC 6750 3.1, exactly as SPEC 5 words them.
CHALLENGE = 'Bearer realm="api"'
CHALLENGE_INVALID_TOKEN = 'Bearer realm="api", error="invalid_token"'  # noqa: S105 (not a secret)

_CODES = {
    400: ("invalid_request", "The request is not valid."),
    401: ("authorization_required", "This route needs an access token."),
    403: ("forbidden", "You are not allowed to do this."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is larger than 64 KiB."),
    415: ("unsupported_media_type", "The body must be JSON (application/json)."),
    429: ("rate_limited", "Too many attempts; try again later."),
    500: ("internal_error", "Something went wrong on our side."),
    503: ("service_unavailable", "The service cannot reach its database; try again shortly."),
}

# The constraint behind "username taken", named in the first migration.
USERNAME_CONSTRAINT = "uq_users_username_lower"


class APIError(Exception):
    """An error a view raises; `handle_api_error` turns it into SPEC 5's JSON."""

    def __init__(self, status, error, message, *, fields=None, headers=None, extra=None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}


def username_taken() -> APIError:
    return APIError(409, "username_taken", "That username is taken.", fields={"username": "Already taken."})


def error_response(status, error, message, *, fields=None, headers=None, extra=None):
    body = {**(extra or {}), "error": error, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def token_refused(message="The token is not valid.") -> APIError:
    return APIError(401, "invalid_token", message, headers={"WWW-Authenticate": CHALLENGE_INVALID_TOKEN})


def invalid_token(message="The token is not valid."):
    return handle_api_error(token_refused(message))


def register_error_handlers(app: Flask, jwt: JWTManager) -> None:
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    for database_down in DATABASE_UNAVAILABLE:
        app.register_error_handler(database_down, handle_database_unavailable)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(Exception, handle_unexpected_error)
    _register_jwt_loaders(jwt)


def handle_api_error(error: APIError):
    return error_response(
        error.status, error.error, error.message, fields=error.fields, headers=error.headers, extra=error.extra
    )


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    error, message = _CODES.get(status, (_snake_case(exc.name), exc.description))
    data = getattr(exc, "data", None) or {}
    fields = _flatten_messages(data["messages"]) if "messages" in data else None
    headers = {}
    if status == 405:
        headers["Allow"] = exc.get_response().headers.get("Allow", "")
    if status == 400 and fields:
        message = "Some fields are missing or invalid."
    return error_response(status, error, message, fields=fields, headers=headers)


def handle_database_unavailable(exc):
    # Flask-JWT-Extended's loaders let these through on purpose: a loader that
    # swallowed them would turn an outage into a 401.
    current_app.logger.warning("database unavailable: %s", type(exc).__name__)
    return error_response(503, *_CODES[503], headers={"Retry-After": RETRY_AFTER_SECONDS})


def handle_integrity_error(exc: IntegrityError):
    db.session.rollback()
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if constraint == USERNAME_CONSTRAINT:
        return handle_api_error(username_taken())
    current_app.logger.error("integrity error on constraint %s", constraint)
    return error_response(409, *_CODES[409])


def handle_csrf_error(exc: CSRFError):
    # Flask-JWT-Extended would send this to its unauthorized loader (a 401).
    return error_response(
        403, "csrf_failed", "A request authenticated by cookie must send the CSRF cookie's value in X-CSRF-TOKEN."
    )


def handle_unexpected_error(exc: Exception):
    current_app.logger.exception("unhandled error")
    return error_response(500, *_CODES[500])


def _register_jwt_loaders(jwt: JWTManager) -> None:
    # Each loader must return a response; Flask-JWT-Extended would answer 422 by default.
    @jwt.unauthorized_loader
    def no_token(reason: str):
        return error_response(401, *_CODES[401], headers={"WWW-Authenticate": CHALLENGE})

    @jwt.invalid_token_loader
    def bad_token(reason: str):
        return invalid_token()

    @jwt.expired_token_loader
    def expired_token(jwt_header, jwt_data):
        return error_response(
            401,
            "token_expired",
            "The token has expired; refresh it or log in again.",
            headers={"WWW-Authenticate": CHALLENGE_INVALID_TOKEN},
        )

    @jwt.revoked_token_loader
    def revoked_token(jwt_header, jwt_data):
        return invalid_token("The token's session has ended.")

    @jwt.user_lookup_error_loader
    def session_gone(jwt_header, jwt_data):
        return invalid_token("The token's session has ended, or its user is gone or inactive.")

    @jwt.needs_fresh_token_loader
    def stale_token(jwt_header, jwt_data):
        return invalid_token("This action needs a token from a fresh login.")

    @jwt.token_verification_failed_loader
    def claims_refused(jwt_header, jwt_data):
        return invalid_token()


def _flatten_messages(messages) -> dict:
    """webargs' {"json": {"field": ["problem"]}} as SPEC 5's {"field": "problem"}."""
    fields = {}
    for problems in messages.values():
        if not isinstance(problems, dict):
            fields["body"] = _sentence(problems)
            continue
        for field, problem in problems.items():
            fields["body" if field == "_schema" else field] = _sentence(problem)
    return fields


def _sentence(problem) -> str:
    if isinstance(problem, dict):
        return " ".join(f"{key}: {_sentence(value)}" for key, value in problem.items())
    if isinstance(problem, list | tuple):
        return " ".join(_sentence(item) for item in problem)
    return str(problem)


def _snake_case(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split())
