"""Issuing tokens, and the Flask-JWT-Extended callbacks that check them."""

from flask import after_this_request, current_app, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    set_access_cookies,
    set_refresh_cookies,
    unset_jwt_cookies,
)

from . import config
from .claims import read_claims
from .exceptions import InvalidToken
from .models import LoginSession, User
from .sessions import find_live_user


def issue_tokens(*, user: User, login_session: LoginSession, fresh: bool) -> dict:
    """The token response (docs/api.md, "POST /token"): a new access token and the session's refresh token.

    The refresh token is made from the session's `refresh_jti` and
    `expires_at`, so issuing it twice gives the same `jti` and `exp`.
    """
    claims = {"role": user.role, "sid": str(login_session.id)}
    access_token = create_access_token(identity=str(user.id), additional_claims=claims, fresh=fresh)
    refresh_token = create_refresh_token(
        identity=str(user.id),
        additional_claims={
            **claims,
            "jti": str(login_session.refresh_jti),
            "exp": int(login_session.expires_at.timestamp()),
        },
    )
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        "refresh_token": refresh_token,
        "token": access_token,  # the classic snippet's field name (tests/perf/baseline_app.py), for its front ends
        "user_id": user.id,
    }


def cookie_mode() -> bool:
    """config.cookie_mode() for this request's app."""
    return config.cookie_mode(current_app.config["JWT_TOKEN_LOCATION"])


def send_token_cookies(tokens: dict) -> None:
    """In cookie mode, also set the tokens as HttpOnly cookies on this response.

    Only for requests that a cross-site form cannot make (_not_a_form_post):
    a form posting an attacker's credentials from another site must not log
    the victim's browser in (login CSRF). Their names and paths: config.py.
    """
    if not cookie_mode() or not _not_a_form_post():
        return

    @after_this_request
    def set_cookies(response):
        # Cookies that expire with their tokens, not with the browser window.
        refresh_seconds = int(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds())
        set_access_cookies(response, tokens["access_token"], max_age=tokens["expires_in"])
        set_refresh_cookies(response, tokens["refresh_token"], max_age=refresh_seconds)
        return response


def _not_a_form_post() -> bool:
    """Whether the request carries what a plain HTML form cannot send.

    A JSON body, an X-CSRF-TOKEN header or a Bearer token: sent cross-site,
    each needs a CORS preflight, which only CORS_ORIGINS pass. Not any
    Authorization header: a browser adds cached Basic, Digest or Negotiate
    credentials to a cross-site form post by itself (a Basic-protected
    staging proxy, Windows sign-on), and never a Bearer token.
    """
    authorization = request.headers.get("Authorization", "")
    return request.is_json or "X-CSRF-TOKEN" in request.headers or authorization[:7].lower() == "bearer "


def clear_token_cookies() -> None:
    """In cookie mode, remove the token and CSRF cookies (logout)."""
    if not cookie_mode():
        return

    @after_this_request
    def clear_cookies(response):
        unset_jwt_cookies(response)
        return response


def refuse_tossed_cookies() -> None:
    """In cookie mode, refuse (InvalidToken) a request that carries a token cookie twice, and clear ours.

    A page on another port of this host, or on a sibling subdomain, can set
    a cookie of the same name for a narrower path (or the parent domain): the
    browser then sends both, its own first, and Flask-JWT-Extended would use
    the attacker's. The __Host- names (config.py) stop this where cookies
    are Secure; this refusal covers the rest. Clearing ours signs the browser
    out rather than leaving it half in the attacker's session.
    """
    if not cookie_mode():
        return
    config = current_app.config
    names = (config["JWT_ACCESS_COOKIE_NAME"], config["JWT_REFRESH_COOKIE_NAME"])
    if any(len(request.cookies.getlist(name)) > 1 for name in names):
        clear_token_cookies()
        raise InvalidToken("The request carries a token cookie twice: another site set one. Log in again.")


def register_token_loaders(jwt: JWTManager) -> None:
    @jwt.decode_key_loader
    def check_claims_then_key(jwt_header: dict, jwt_data: dict):
        # Flask-JWT-Extended calls this for every token it decodes (the
        # guards, decode_token for the refresh grant, /logout), with the
        # header and claims as sent: before it checks the signature, and
        # before it fills in defaults (a missing "type" would become
        # "access"). So this is where their shape is checked, and where the
        # verifying key is chosen by the header's kid (keys.py); InvalidToken
        # makes either a 401.
        read_claims(jwt_data)
        return current_app.config["SIGNING_KEYS"].verification_key(jwt_header.get("kid"))

    @jwt.additional_headers_loader
    def key_id(identity) -> dict:
        return current_app.config["SIGNING_KEYS"].token_headers()

    @jwt.user_lookup_loader
    def load_live_user(jwt_header: dict, jwt_data: dict) -> User | None:
        # Must return the user or None (then a 401 invalid_token). Database
        # errors are left to propagate, so an outage is a 503, not a 401.
        claims = read_claims(jwt_data)
        # A read may be answered from this worker's memory of live sessions
        # (session_cache.py: within a second of any revocation); a write
        # always asks PostgreSQL.
        remembered = jwt_data if request.method in ("GET", "HEAD") else None
        return find_live_user(user_id=claims.user_id, session_id=claims.session_id, claims=remembered)
