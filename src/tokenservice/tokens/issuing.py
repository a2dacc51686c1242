"""Issuing tokens, and the Flask-JWT-Extended callbacks that check them (their cookies: cookies.py)."""

from flask import current_app, g, request
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token

from ..rules.clients import LiveClient, find_live_client
from ..rules.exceptions import ClientTokenRefused
from ..rules.sessions import find_live_user
from ..storage.models import ApiClient, ClientToken, LoginSession, User
from .claims import ClientClaims, read_any_claims
from .decoded_tokens import RememberingJWTManager

# Set by a guard (web/guards.py) whose route also takes clients' tokens; everywhere else a client's token is a 403.
ACCEPTS_CLIENTS = "accepts_clients"

jwt = RememberingJWTManager()  # Flask-JWT-Extended's, verifying each token string once


def issue_tokens(*, user: User, login_session: LoginSession, fresh: bool) -> dict:
    """The token response (docs/api.md, "POST /token"): a new access token and the session's refresh token.

    The refresh token is made from the session's `refresh_jti` and
    `expires_at`, so issuing it twice gives the same `jti` and `exp`.
    """
    # amr (RFC 8176): how the session's login proved itself, so that a service can ask for a second factor.
    claims = {"role": user.role, "sid": str(login_session.id), "amr": list(login_session.amr)}
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


def client_token_response(*, client: ApiClient, token: ClientToken) -> dict:
    """The client_credentials answer: an access token whose `sub` is the client, with its scopes; no refresh token."""
    scope = " ".join(token.scopes)
    claims = {"sid": str(token.id), "client_id": client.id, "scope": scope}
    access_token = create_access_token(identity=client.id, additional_claims=claims, fresh=False)
    expires_in = int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds())
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in, "scope": scope}


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
        read_any_claims(jwt_data)
        return current_app.config["SIGNING_KEYS"].verification_key(jwt_header.get("kid"))

    @jwt.additional_headers_loader
    def key_id(identity) -> dict:
        return current_app.config["SIGNING_KEYS"].token_headers()

    @jwt.user_lookup_loader
    def load_live_user(jwt_header: dict, jwt_data: dict) -> User | LiveClient | None:
        # Must return the user or None (then a 401 invalid_token). Database
        # errors are left to propagate, so an outage is a 503, not a 401.
        claims = read_any_claims(jwt_data)
        if isinstance(claims, ClientClaims):
            # A live client only where the route's guard takes clients (it checks the scope); a 403 elsewhere.
            if not g.get(ACCEPTS_CLIENTS):
                raise ClientTokenRefused()
            return find_live_client(client_id=claims.client_id, token_id=claims.session_id)
        # A read may be answered from this worker's memory of live sessions
        # (session_cache.py: within a second of any revocation); a write
        # always asks PostgreSQL.
        remembered = jwt_data if request.method in ("GET", "HEAD") else None
        return find_live_user(user_id=claims.user_id, session_id=claims.session_id, claims=remembered)
