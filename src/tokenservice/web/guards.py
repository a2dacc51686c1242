"""Who may call each route: one guard per route, which enforces it and documents it.

Every API route names its guard in its route line
(`@bp.route("/me", methods=["GET"], guard=ACCESS_TOKEN)`, see
openapi.Blueprint.route); the guard wraps the view and adds the matching
security requirement and error responses to the OpenAPI document, so the
two cannot drift apart. The token guards are Flask-JWT-Extended's
`@jwt_required()`; the role rule itself lives in rules/roles.py.
"""

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flask import current_app, g, request
from flask_jwt_extended import get_current_user, get_jwt, jwt_required, verify_jwt_in_request
from flask_jwt_extended.exceptions import NoAuthorizationError, UserLookupError
from jwt import ExpiredSignatureError

from ..rules.clients import INTROSPECT, READ_USERS, LiveClient, authenticate_client
from ..rules.exceptions import Forbidden, SecondFactorRequired
from ..rules.roles import require_admin
from ..rules.second_factor import OTP
from ..tokens.claims import read_claims
from ..tokens.cookies import cookie_mode, refuse_tossed_cookies
from ..tokens.decoded_tokens import expired_claims
from ..tokens.issuing import ACCEPTS_CLIENTS
from .openapi import REGISTRATION_SECURITY, TOKEN_SECURITY, errors

# Flask-JWT-Extended's default JWT_CSRF_METHODS: in cookie mode, these need
# the CSRF header (403 csrf_failed).
CSRF_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True, eq=False)  # each guard is itself: compared and hashed by identity
class Guard:
    """How a route is guarded (`enforce` wraps the view) and what that adds to its OpenAPI description."""

    enforce: Callable[[Callable], Callable] | None = None
    security: list[dict] | None = None
    errors: tuple[int, ...] = ()
    reads_token: bool = False  # a token from a cookie means a CSRF check on CSRF_METHODS
    doc: dict = field(default_factory=dict)

    def protect(self, view: Callable, *, methods: list[str]) -> Callable:
        guarded = self.enforce(view) if self.enforce else view
        if self.reads_token:
            guarded = _one_cookie_each(guarded)
        statuses = set(self.errors)
        if self.reads_token and CSRF_METHODS & set(methods):
            statuses.add(403)
        doc = dict(self.doc)
        if self.security is not None:
            doc["security"] = self.security
        guarded = errors(*statuses, **doc)(guarded)
        guarded.guard = self  # for the tests that try to get past every route's guard
        return guarded


def _one_cookie_each(view):
    @functools.wraps(view)
    def one_cookie_each(*args, **kwargs):
        refuse_tossed_cookies()  # before any token is read
        return view(*args, **kwargs)

    return one_cookie_each


def _admin_only(view):
    @functools.wraps(view)
    def admin_only(*args, **kwargs):
        require_admin(get_current_user())
        return view(*args, **kwargs)

    return jwt_required()(admin_only)


def _second_factor_proven(view):
    @functools.wraps(view)
    def second_factor_proven(*args, **kwargs):
        if OTP not in read_claims(get_jwt()).amr:
            raise SecondFactorRequired()
        return view(*args, **kwargs)

    return jwt_required(fresh=True)(second_factor_proven)


def _admin_or_client_with(scope: str):
    """An admin's token, or a live client's token that carries `scope` (403 without it)."""

    def guard(view):
        @functools.wraps(view)
        def admin_or_client(*args, **kwargs):
            caller = get_current_user()
            if isinstance(caller, LiveClient):
                if scope not in caller.scopes:  # the token row's scopes, not the token's claim
                    raise Forbidden(f"This client's token does not carry the scope {scope}.")
            else:
                require_admin(caller)
            return view(*args, **kwargs)

        checked = jwt_required()(admin_or_client)

        @functools.wraps(view)
        def taking_clients(*args, **kwargs):
            setattr(g, ACCEPTS_CLIENTS, True)  # before the token is read (tokens/issuing.py)
            try:
                return checked(*args, **kwargs)
            finally:
                g.pop(ACCEPTS_CLIENTS, None)

        return taking_clients

    return guard


def client_credentials(body: Mapping | None = None) -> tuple[str | None, str | None]:
    """The client id and secret of HTTP Basic, or else of the body (the form unless given: RFC 6749 2.3.1);
    (None, None) without."""
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username, basic.password
    body = request.form if body is None else body
    return body.get("client_id"), body.get("client_secret")


def _client_with(scope: str):
    """Client credentials (HTTP Basic or the form) of an active client that holds `scope`."""

    def guard(view):
        @functools.wraps(view)
        def authenticated_client(*args, **kwargs):
            client = authenticate_client(*client_credentials())
            if scope not in client.scopes:
                raise Forbidden(f"This client does not hold the scope {scope}.")
            g.client = client
            return view(*args, **kwargs)

        return authenticated_client

    return guard


def _registration_allowed(view):
    @functools.wraps(view)
    def registration_allowed(*args, **kwargs):
        # Checked before the body is validated: a closed service tells
        # nothing about its password rules to strangers.
        if not current_app.config["ALLOW_REGISTRATION"]:
            verify_jwt_in_request()
            require_admin(get_current_user(), "Only an admin may create users.")
        return view(*args, **kwargs)

    return registration_allowed


def _signed_token_even_if_expired(view):
    @functools.wraps(view)
    def signed_token(*args, **kwargs):
        g.session_claims, g.session_token_expired = _claims_even_if_expired()
        return view(*args, **kwargs)

    return signed_token


def _claims_even_if_expired() -> tuple[dict, bool]:
    """The token's claims, its signature (and, for cookies, the CSRF value) checked, and whether it has expired.

    An SPA coming back after an hour holds an expired access token and must
    still be able to log out. In cookie mode, the refresh cookie (sent to
    every path) stands in when the access cookie is gone.
    """
    try:
        try:
            verify_jwt_in_request(verify_type=False)
        except NoAuthorizationError:
            if not cookie_mode():
                raise
            verify_jwt_in_request(refresh=True)
    except ExpiredSignatureError as exc:
        return expired_claims(exc), True  # the session is judged by the view
    except UserLookupError as exc:
        return exc.jwt_data, False
    return get_jwt(), False


def session_claims() -> dict:
    """The claims of the token that SESSION_TOKEN let through."""
    return g.session_claims


def session_token_expired() -> bool:
    """Whether the token that SESSION_TOKEN let through has expired."""
    return g.session_token_expired


def require_admin_caller(message: str) -> None:
    """For an admin-only option of a route anyone may call: refuse anyone but an admin, token or not."""
    verify_jwt_in_request(optional=True)
    require_admin(get_current_user(), message)


# Anyone, no token.
ANYONE = Guard()
# A live session's access token (401 without one; never a refresh token).
ACCESS_TOKEN = Guard(jwt_required(), TOKEN_SECURITY, (401, 503), reads_token=True)
# A live session's refresh token, in Authorization: Bearer (or, in cookie mode, its cookie).
REFRESH_TOKEN = Guard(
    jwt_required(refresh=True),
    [{"bearerAuth": []}],
    (401, 503),
    reads_token=True,
    doc={"description": "The refresh token goes in Authorization: Bearer."},
)
# An access token from a login with the password, not from a refresh: a
# stolen token that was refreshed cannot turn a second factor on (403 fresh_login_required).
FRESH_ACCESS_TOKEN = Guard(
    jwt_required(fresh=True),
    TOKEN_SECURITY,
    (401, 403, 503),
    reads_token=True,
    doc={"description": "Needs an access token from a login with the password, not from a refresh."},
)
# An access token from a login, as FRESH_ACCESS_TOKEN, that used a second factor (amr "otp"; 403
# second_factor_required): a refresh token stolen weeks later cannot replace the recovery codes.
SECOND_FACTOR = Guard(
    _second_factor_proven,
    TOKEN_SECURITY,
    (401, 403, 503),
    reads_token=True,
    doc={"description": "Needs an access token from a login, just now, with a second factor (amr has otp)."},
)
# An access token of a live, active admin (401 without a token, 403 for anyone else).
ADMIN = Guard(_admin_only, TOKEN_SECURITY, (401, 403, 503), reads_token=True)
# An admin's access token, or a client's token with the scope users:read (403 for anyone else).
ADMIN_OR_USER_READER = Guard(
    _admin_or_client_with(READ_USERS),
    [*TOKEN_SECURITY, {"clientCredentials": [READ_USERS]}],
    (401, 403, 503),
    reads_token=True,
)
# A client's own credentials, HTTP Basic or in the form, of a client that holds the scope introspect.
INTROSPECTING_CLIENT = Guard(_client_with(INTROSPECT), [{"basicAuth": []}], (401, 403, 503))
# Anyone while ALLOW_REGISTRATION is true, else as ADMIN.
REGISTRATION = Guard(_registration_allowed, REGISTRATION_SECURITY, (401, 403, 503), reads_token=True)
# An access or refresh token whose signature is good, even an expired one
# (POST /logout); the view judges its session (session_claims()).
SESSION_TOKEN = Guard(_signed_token_even_if_expired, TOKEN_SECURITY, (401, 503), reads_token=True)
