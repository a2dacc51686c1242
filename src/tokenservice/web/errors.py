"""Where every error becomes HTTP: the one error shape and the handlers that produce it.

Every error leaves as `{"error", "message"[, "fields"]}` (docs/api.md, "Errors").
The rules raise the exceptions of `rules/exceptions.py`; `ANSWERS` below gives
each its status, code and headers. Flask's and Werkzeug's own errors, the
Flask-JWT-Extended loaders and the database's errors come through here too.
Nothing else builds error JSON.
"""

from dataclasses import dataclass, field

from flask import Flask, current_app, jsonify
from flask_jwt_extended import JWTManager
from flask_jwt_extended.exceptions import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from ..rules.exceptions import (
    BodyTooSlow,
    ChangedMeanwhile,
    CsrfFailed,
    DatabaseUnavailable,
    EmailAlreadyVerified,
    EmailNotVerified,
    EmailTaken,
    Forbidden,
    FreshLoginRequired,
    HashingBusy,
    InvalidClient,
    InvalidCredentials,
    InvalidInput,
    InvalidLink,
    InvalidOtp,
    InvalidScope,
    InvalidToken,
    LastAdmin,
    MailUnavailable,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaRequired,
    MfaUnavailable,
    NoEmailAddress,
    NoSuchClient,
    NoSuchSession,
    NoSuchUser,
    NotDiscoverable,
    Refusal,
    SecondFactorRequired,
    SessionEnded,
    TokenExpired,
    TokenRequired,
    TooManyAttempts,
    TooManyFailedLogins,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedMediaType,
    UsernameTaken,
)
from ..storage.database import DATABASE_UNAVAILABLE, constraint_name
from ..storage.extensions import db

# RFC 6750 3.1's challenges.
CHALLENGE = 'Bearer realm="api"'
CHALLENGE_INVALID_TOKEN = 'Bearer realm="api", error="invalid_token"'  # noqa: S105 (not a secret)
CHALLENGE_INSUFFICIENT_SCOPE = 'Bearer realm="api", error="insufficient_scope"'


@dataclass(frozen=True)
class Answer:
    status: int
    error: str
    headers: dict[str, str] = field(default_factory=dict)


# What each refusal is in HTTP. A subclass answers as its nearest listed base
# (RefreshTokenReused as InvalidToken, PasswordRefused as InvalidInput).
ANSWERS: dict[type[Refusal], Answer] = {
    InvalidInput: Answer(400, "invalid_request"),
    UnsupportedGrantType: Answer(400, "unsupported_grant_type"),
    InvalidScope: Answer(400, "invalid_scope"),
    UnauthorizedClient: Answer(400, "unauthorized_client"),
    # RFC 6749 5.2: a client that authenticated with HTTP Basic is told the scheme it failed.
    InvalidClient: Answer(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="api"'}),
    InvalidLink: Answer(400, "invalid_link"),
    # No challenge: a browser would pop up a login dialog over the page.
    InvalidCredentials: Answer(401, "invalid_credentials"),
    MfaRequired: Answer(401, "mfa_required"),
    InvalidOtp: Answer(401, "invalid_otp"),
    TokenRequired: Answer(401, "authorization_required", {"WWW-Authenticate": CHALLENGE}),
    InvalidToken: Answer(401, "invalid_token", {"WWW-Authenticate": CHALLENGE_INVALID_TOKEN}),
    TokenExpired: Answer(401, "token_expired", {"WWW-Authenticate": CHALLENGE_INVALID_TOKEN}),
    Forbidden: Answer(403, "forbidden", {"WWW-Authenticate": CHALLENGE_INSUFFICIENT_SCOPE}),
    CsrfFailed: Answer(403, "csrf_failed"),
    EmailNotVerified: Answer(403, "email_not_verified"),
    FreshLoginRequired: Answer(403, "fresh_login_required"),
    SecondFactorRequired: Answer(403, "second_factor_required"),
    NoSuchUser: Answer(404, "not_found"),
    NoSuchSession: Answer(404, "not_found"),
    NoSuchClient: Answer(404, "not_found"),
    NotDiscoverable: Answer(404, "not_found"),
    UsernameTaken: Answer(409, "username_taken"),
    EmailTaken: Answer(409, "email_taken"),
    NoEmailAddress: Answer(409, "no_email_address"),
    EmailAlreadyVerified: Answer(409, "email_already_verified"),
    MfaAlreadyEnabled: Answer(409, "mfa_already_enabled"),
    MfaNotEnabled: Answer(409, "mfa_not_enabled"),
    LastAdmin: Answer(409, "last_admin"),
    ChangedMeanwhile: Answer(409, "conflict"),
    BodyTooSlow: Answer(408, "request_timeout"),
    UnsupportedMediaType: Answer(415, "unsupported_media_type"),
    TooManyFailedLogins: Answer(429, "rate_limited"),
    TooManyAttempts: Answer(429, "rate_limited"),
    HashingBusy: Answer(503, "service_unavailable"),
    DatabaseUnavailable: Answer(503, "service_unavailable"),
    MailUnavailable: Answer(503, "mail_unavailable"),
    MfaUnavailable: Answer(503, "mfa_unavailable"),
}

# Werkzeug's HTTP errors (routing, webargs' validation, body size) by status.
_HTTP_ERRORS = {
    400: ("invalid_request", "The request is not valid."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is larger than 64 KiB."),
    415: ("unsupported_media_type", "The body must be JSON (application/json)."),
    # Flask-Limiter's limit per client address; it adds Retry-After itself.
    429: ("rate_limited", "Too many attempts from this address; try again later."),
    500: ("internal_error", "Something went wrong on our side."),
}


def answer_for(refusal: Refusal) -> Answer:
    for cls in type(refusal).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    raise TypeError(f"{type(refusal).__name__} has no answer in errors.ANSWERS")


def refusal_response(refusal: Refusal):
    answer = answer_for(refusal)
    headers = dict(answer.headers)
    if refusal.retry_after:
        headers["Retry-After"] = str(refusal.retry_after)
    return error_response(
        answer.status, answer.error, refusal.message, fields=refusal.fields, headers=headers, details=refusal.details
    )


def error_response(status, error, message, *, fields=None, headers=None, details=None):
    body = {**(details or {}), "error": error, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask, jwt: JWTManager) -> None:
    app.register_error_handler(Refusal, refusal_response)
    app.register_error_handler(HTTPException, handle_http_exception)
    for database_down in DATABASE_UNAVAILABLE:
        app.register_error_handler(database_down, handle_database_unavailable)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    # Flask-JWT-Extended would send this to its unauthorized loader (a 401).
    app.register_error_handler(CSRFError, lambda exc: refusal_response(CsrfFailed()))
    app.register_error_handler(Exception, handle_unexpected_error)
    _register_jwt_loaders(jwt)


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    error, message = _HTTP_ERRORS.get(status, (_snake_case(exc.name), exc.description))
    data = getattr(exc, "data", None) or {}
    fields = _flatten_messages(data["messages"]) if "messages" in data else None
    headers = {}
    if status == 405:
        headers["Allow"] = exc.get_response().headers.get("Allow", "")
    if status == 400 and fields:
        message = InvalidInput.message
    return error_response(status, error, message, fields=fields, headers=headers)


def handle_database_unavailable(exc):
    # Flask-JWT-Extended's loaders let these through on purpose: a loader that
    # swallowed them would turn an outage into a 401.
    current_app.logger.warning("database unavailable: %s", type(exc).__name__)
    return refusal_response(DatabaseUnavailable())


def handle_integrity_error(exc: IntegrityError):
    # The constraints the rules know (the username index) are refusals by
    # now; any other is a conflict nobody planned for.
    db.session.rollback()
    current_app.logger.error("integrity error on constraint %s", constraint_name(exc))
    return error_response(409, *_HTTP_ERRORS[409])


def handle_unexpected_error(exc: Exception):
    current_app.logger.exception("unhandled error")
    return error_response(500, *_HTTP_ERRORS[500])


def _register_jwt_loaders(jwt: JWTManager) -> None:
    # Each loader must return a response; Flask-JWT-Extended would answer 422 by default.
    @jwt.unauthorized_loader
    def no_token(reason: str):
        return refusal_response(TokenRequired())

    @jwt.invalid_token_loader
    def bad_token(reason: str):
        return refusal_response(InvalidToken())

    @jwt.expired_token_loader
    def expired_token(jwt_header, jwt_data):
        return refusal_response(TokenExpired())

    @jwt.needs_fresh_token_loader
    def not_fresh(jwt_header, jwt_data):
        return refusal_response(FreshLoginRequired())

    @jwt.user_lookup_error_loader
    def session_gone(jwt_header, jwt_data):
        return refusal_response(SessionEnded())


def _flatten_messages(messages) -> dict:
    """webargs' {"json": {"field": ["problem"]}} as the error shape's {"field": "problem"}."""
    fields = {}
    for problems in messages.values():
        if not isinstance(problems, dict):
            fields["body"] = _sentence(problems)
            continue
        for name, problem in problems.items():
            fields["body" if name == "_schema" else name] = _sentence(problem)
    return fields


def _sentence(problem) -> str:
    if isinstance(problem, dict):
        return " ".join(f"{key}: {_sentence(value)}" for key, value in problem.items())
    if isinstance(problem, list | tuple):
        return " ".join(_sentence(item) for item in problem)
    return str(problem)


def _snake_case(name: str) -> str:
    return "_".join(name.lower().replace("-", " ").split())
