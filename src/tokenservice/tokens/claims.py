"""The shape of a token's claims, checked in one place (docs/api.md, "Tokens").

A token whose signature is good can still carry claims of the wrong shape:
every service that verifies HS256 tokens holds the key that signs them.
`read_any_claims` is the one check: issuing.py runs it on every token before
its signature is verified (the guards, the refresh grant, /logout and
introspection all decode through there); a user's token is read by
`read_claims`, a client's (rules/clients.py) as ClientClaims.
"""

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ..rules.clients import CLIENT_ID
from ..rules.exceptions import InvalidToken

ACCESS = "access"
REFRESH = "refresh"
# A users.id: a positive PostgreSQL integer, written plainly (no sign, no leading zero).
_USER_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_USER_ID = 2**31 - 1


@dataclass(frozen=True)
class Claims:
    user_id: int
    session_id: uuid.UUID
    jti: uuid.UUID
    kind: str  # ACCESS or REFRESH
    amr: tuple[str, ...] = ()  # how the session's login proved itself (RFC 8176): "pwd", "otp"


def read_claims(claims: Mapping) -> Claims:
    """The claims as values, or InvalidToken when any has the wrong shape.

    `sub` must be a user id as a string, `sid` and `jti` UUID strings, `type`
    "access" or "refresh", `exp` a number, `nbf` and `iat`, when present,
    numbers, and `amr`, when present, a list of strings.
    """
    sub, kind = claims.get("sub"), claims.get("type")
    if not (isinstance(sub, str) and _USER_ID.fullmatch(sub) and int(sub) <= _MAX_USER_ID):
        raise InvalidToken()
    if kind not in (ACCESS, REFRESH):
        raise InvalidToken()
    _check_times(claims)
    amr = claims.get("amr", [])
    if not (isinstance(amr, list) and all(isinstance(method, str) for method in amr)):
        raise InvalidToken()
    return Claims(
        user_id=int(sub), session_id=_uuid(claims.get("sid")), jti=_uuid(claims.get("jti")), kind=kind, amr=tuple(amr)
    )


@dataclass(frozen=True)
class ClientClaims:
    """A client's access token (rules/clients.py): `sub` and `client_id` the client's id, `scope` its scopes."""

    client_id: str
    session_id: uuid.UUID  # the token's row in client_tokens
    jti: uuid.UUID
    scopes: tuple[str, ...]


def read_any_claims(claims: Mapping) -> Claims | ClientClaims:
    """A user's token as read_claims reads it, or a client's access token; else InvalidToken."""
    sub = claims.get("sub")
    if not (isinstance(sub, str) and CLIENT_ID.fullmatch(sub)):
        return read_claims(claims)
    scope = claims.get("scope")
    if claims.get("client_id") != sub or claims.get("type") != ACCESS or not isinstance(scope, str):
        raise InvalidToken()
    _check_times(claims)
    return ClientClaims(
        client_id=sub, session_id=_uuid(claims.get("sid")), jti=_uuid(claims.get("jti")), scopes=tuple(scope.split())
    )


def read_refresh_claims(claims: Mapping) -> Claims:
    """read_claims, refusing (InvalidToken) any token but a refresh token."""
    token = read_claims(claims)
    if token.kind != REFRESH:
        raise InvalidToken("Only a refresh token can be refreshed.")
    return token


def _check_times(claims: Mapping) -> None:
    """`exp` a number, and `nbf` and `iat`, when present, numbers; else InvalidToken."""
    if "exp" not in claims or not all(_is_number(claims[name]) for name in ("exp", "nbf", "iat") if name in claims):
        raise InvalidToken()


def _is_number(value) -> bool:
    # JSON as Python reads it also has true/false (bools are ints) and Infinity.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _uuid(value) -> uuid.UUID:
    """A UUID written the one way this service writes them (uuid.UUID also takes braces, URNs, no dashes)."""
    try:
        parsed = uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        raise InvalidToken() from None
    if str(parsed) != value:
        raise InvalidToken()
    return parsed
