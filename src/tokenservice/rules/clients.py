"""Clients: machines with credentials of their own, for a cron job or another service (docs/clients.md).

An admin creates a client with a name and scopes; its secret is shown once
and stored only as its SHA-256 (256 random bits: there is no dictionary to
try, so a slow hash would add nothing but cost on every token request and
introspection). The id and the secret carry prefixes (`tsc_`,
`tokenservice_secret_`) so that secret scanners can spot a leaked one.

A client trades its credentials for a short-lived access token of its own
(`sub` is the client id, `scope` what it asked for, no refresh token); each
token is a row, so one can be revoked alone, and disabling or deleting the
client stops every token of it at once: every request with a client's token
checks, in one query, that the client is active and the token live.
"""

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, delete, func, not_, select, update

from ..storage.database import changed_rows
from ..storage.extensions import db
from ..storage.models import ApiClient, ClientToken
from . import events
from .exceptions import InvalidClient, InvalidInput, InvalidScope, NoSuchClient

INTROSPECT = "introspect"  # POST /introspect
READ_USERS = "users:read"  # GET /users, GET /users/<id>
SCOPES = (INTROSPECT, READ_USERS)
ID_PREFIX = "tsc_"
SECRET_PREFIX = "tokenservice_secret_"  # noqa: S105 (a prefix, not a secret)
CLIENT_ID = re.compile(rf"{ID_PREFIX}[A-Za-z0-9_-]{{22}}")
LIVE_TOKEN = and_(ClientToken.ended_at.is_(None), ClientToken.expires_at > func.now())
# Compared against when the client id is unknown, so that an unknown id takes as long as a wrong secret.
_NO_SECRET = hashlib.sha256(b"no client has this secret").digest()


@dataclass(frozen=True)
class LiveClient:
    """The caller behind a live client token: the client, and the scopes of that token's row (the database's
    word, not the token's: a service holding the HS256 key could sign itself more)."""

    client_id: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    secret: str  # shown this once


def create_client(*, name: str, scopes: list[str]) -> NewClient:
    """A new client with these scopes (InvalidInput for unknown ones); the caller commits."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidInput("Unknown or no scopes.", fields={"scopes": f"One or more of: {', '.join(SCOPES)}."})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        id=ID_PREFIX + secrets.token_urlsafe(16)[:22],
        name=name,
        secret_hash=_hash(secret),
        scopes=sorted(set(scopes)),
    )
    db.session.add(client)
    db.session.flush()
    events.record("client_created", client_id=client.id, scopes=client.scopes)
    return NewClient(client=client, secret=secret)


def list_clients() -> list[ApiClient]:
    return list(db.session.execute(select(ApiClient).order_by(ApiClient.created_at)).scalars())


def get_client(client_id: str) -> ApiClient:
    client = db.session.get(ApiClient, client_id) if CLIENT_ID.fullmatch(client_id) else None
    if client is None:
        raise NoSuchClient()
    return client


def set_active(client: ApiClient, active: bool) -> None:
    """Enable or disable a client, ending its tokens either way; the caller commits.

    Disabling stops them at once. Enabling ends them again: a token granted
    while the disable committed (its row missed by that UPDATE) must not come
    alive with the client.
    """
    client.is_active = active
    ended = end_client_tokens(client_id=client.id)
    events.record("client_enabled" if active else "client_disabled", client_id=client.id, tokens_ended=ended)


def delete_client(client: ApiClient) -> None:
    """Delete a client; its tokens go with it (ON DELETE CASCADE) and stop at once. The caller commits."""
    events.record("client_deleted", client_id=client.id)
    db.session.delete(client)
    db.session.flush()


def authenticate_client(client_id: str | None, secret: str | None) -> ApiClient:
    """The active client with these credentials, or InvalidClient; an unknown id costs what a wrong secret does."""
    client = None
    if client_id and CLIENT_ID.fullmatch(client_id):
        client = db.session.get(ApiClient, client_id)
    expected = client.secret_hash if client is not None else _NO_SECRET
    if not hmac.compare_digest(_hash(secret or ""), expected) or client is None or not client.is_active:
        events.record("client_auth_failed", warning=True, client_id=client.id if client is not None else None)
        raise InvalidClient()
    return client


def issue_client_token(client: ApiClient, *, scope: str | None, lifetime: timedelta) -> ClientToken:
    """A live token row for the client, with the scopes asked for (all of its own when none; InvalidScope
    for any it lacks); the caller signs it and commits."""
    asked = sorted(set(scope.split())) if scope and scope.strip() else list(client.scopes)
    if not set(asked) <= set(client.scopes):
        events.record("client_scope_refused", warning=True, client_id=client.id)
        raise InvalidScope(f"This client may ask for: {' '.join(client.scopes)}.")
    token = ClientToken(client_id=client.id, scopes=asked, expires_at=func.now() + lifetime)
    db.session.add(token)
    db.session.flush()
    events.record("client_token_issued", client_id=client.id, session_id=token.id, scopes=asked)
    return token


def find_live_client(*, client_id: str, token_id: uuid.UUID) -> LiveClient | None:
    """The active client of a live token, with the token's scopes (one query by primary keys), or None."""
    scopes = db.session.execute(
        select(ClientToken.scopes)
        .join(ApiClient, ClientToken.client_id == ApiClient.id)
        .where(ApiClient.id == client_id, ApiClient.is_active, ClientToken.id == token_id, LIVE_TOKEN)
    ).scalar_one_or_none()
    return None if scopes is None else LiveClient(client_id=client_id, scopes=tuple(scopes))


def end_client_tokens(*, client_id: str, token_id: uuid.UUID | None = None) -> int:
    """End a client's live tokens (just `token_id`, or all); how many ended. The caller commits."""
    statement = update(ClientToken).where(ClientToken.client_id == client_id, LIVE_TOKEN).values(ended_at=func.now())
    if token_id is not None:
        statement = statement.where(ClientToken.id == token_id)
    return changed_rows(statement.execution_options(synchronize_session=False))


def purge_client_tokens() -> int:
    """Delete the client tokens that can no longer be used (ended or expired); one statement, committed at once."""
    purge = delete(ClientToken).where(not_(LIVE_TOKEN)).execution_options(synchronize_session=False)
    deleted = changed_rows(purge)
    db.session.commit()
    return deleted


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
