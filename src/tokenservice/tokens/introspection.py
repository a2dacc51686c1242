"""What another service asks about a token: introspection (RFC 7662) and revocation (RFC 7009) (docs/clients.md).

Introspection makes the checks the guards make: the signature, the expiry,
the issuer and audience, the claims' shape, and that the session (a user's)
or the token's row (a client's) is live, so a logout is seen at once. Every
token that fails any of them is only `{"active": false}`: nothing says
which check failed.

Revocation ends the token's session, as a logout does; holding a user's
token is proof enough (the RFC's public clients: the SPA), a client's token
needs that client's credentials. An invalid token, or one already ended, is
no error: the answer is the same 200.
"""

from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError

from ..rules import events
from ..rules.clients import end_client_tokens, find_live_client
from ..rules.exceptions import InvalidClient, Refusal, UnauthorizedClient
from ..rules.sessions import end_sessions, find_live_user, is_current_refresh_token
from ..storage.models import ApiClient
from .claims import REFRESH, ClientClaims, read_any_claims

INACTIVE = {"active": False}


def introspect(token: str) -> dict:
    """RFC 7662 2.2's answer for `token`: its claims with `active: true` while it is good, else only `active: false`."""
    claims = _verified(token, allow_expired=False)
    if claims is None:
        return INACTIVE
    read = read_any_claims(claims)
    if isinstance(read, ClientClaims):
        client = find_live_client(client_id=read.client_id, token_id=read.session_id)
        live = client is not None
        # The row's scopes: the database's word, not the token's.
        extra = {"client_id": read.client_id, "scope": " ".join(client.scopes)} if client else {}
    elif read.kind == REFRESH:  # only the session's current refresh token: a rotated one logs nobody in
        live = is_current_refresh_token(user_id=read.user_id, session_id=read.session_id, jti=read.jti)
        extra = {}
    else:
        live = find_live_user(user_id=read.user_id, session_id=read.session_id) is not None
        extra = {}
    if not live:
        return INACTIVE
    # `type` (this service's claim): "access" or "refresh", so that a resource server can refuse a refresh token.
    answer = {"active": True, "token_type": "Bearer", **{name: claims[name] for name in ("sub", "exp", "sid", "type")}}
    answer.update({name: claims[name] for name in ("iat", "iss", "aud") if name in claims})
    return {**answer, **extra}


def revoke(token: str, *, client: ApiClient | None) -> None:
    """End the token's session (a user's) or the token (a client's, with that client's credentials); the caller
    commits. A token that is not one of ours, or has ended, changes nothing."""
    claims = _verified(token, allow_expired=True)  # an expired access token's session may still be live
    if claims is None:
        return
    read = read_any_claims(claims)
    if isinstance(read, ClientClaims):
        if client is None:
            raise InvalidClient("Revoking a client's token needs that client's credentials.")
        if client.id != read.client_id:
            raise UnauthorizedClient()
        ended = end_client_tokens(client_id=read.client_id, token_id=read.session_id)
        events.record("client_token_revoked", client_id=read.client_id, session_id=read.session_id, ended=ended)
        return
    ended = end_sessions(user_id=read.user_id, session_id=read.session_id)
    events.record("sessions_ended", user_id=read.user_id, sessions=ended, session_id=read.session_id, by="revoke")


def _verified(token: str, *, allow_expired: bool) -> dict | None:
    """The claims of a token whose signature, issuer, audience, shape (and expiry, unless allowed) are good."""
    try:
        return decode_token(token, allow_expired=allow_expired)
    except (PyJWTError, JWTExtendedException, Refusal, ValueError, TypeError):
        return None
