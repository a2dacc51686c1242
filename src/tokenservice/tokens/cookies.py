"""The token cookies of cookie mode (docs/browsers.md): set at login, cleared at logout, refused when doubled."""

from flask import after_this_request, current_app, request
from flask_jwt_extended import set_access_cookies, set_refresh_cookies, unset_jwt_cookies

from .. import config
from ..rules.exceptions import InvalidToken


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
