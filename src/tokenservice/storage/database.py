"""The pooled PostgreSQL connections: one a request at most, none while it waits; a dropped one costs no request.

A request holds at most one pooled connection, its session's, and gives it
back before it waits for anything slow (the hashing thread): the rules call
`release_connection` before hashing, and the failed-login count commits on
the request's own session, never on a second connection. A request that
held one connection while waiting for another could, with enough of them,
leave the pool empty for everyone (/health and logout included).

A connection dropped while idle is replaced before a request uses it; one
dropped after a request's work is done does not turn its answer into an error.

After pg_terminate_backend, a failover, a Heroku Postgres maintenance or a
PgBouncer restart, every idle pooled connection is dead, and each worker
would answer its next request with a 503 before the pool noticed. A dead
connection has something to read (the server's goodbye, or end of file)
while it sits idle in the pool, where a live one has nothing: one select()
with no wait tells them apart in about a microsecond. SQLAlchemy's
pool_pre_ping would ask with a SELECT 1, a round trip on every request
(26 µs on loopback, a network round trip on Heroku); see
docs/decisions/0010-no-pool-pre-ping.md.
"""

import select
from typing import cast

from flask import Flask, current_app
from sqlalchemy import CursorResult, Executable, event
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .extensions import db

# The database errors that mean "PostgreSQL cannot be reached": a 503 (web/errors.py).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


def init_app(app: Flask) -> None:
    with app.app_context():
        event.listen(db.engine, "checkout", _refuse_dropped_connection)
    # Registered after Flask-SQLAlchemy's, so it runs first (teardowns run in reverse).
    app.teardown_appcontext(_end_session)


def release_connection() -> None:
    """End the request's transaction, which must not have changed anything yet, and return its connection.

    For a request about to wait for something slow: a pooled connection held
    meanwhile is one nobody else can use. What it had loaded is read again
    when next used.
    """
    session = db.session
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("release_connection() would discard changes that were not saved")
    session.rollback()


def _end_session(exc) -> None:
    """End the request's session, even when its connection died after the answer was made.

    Flask-SQLAlchemy's own teardown would let the rollback's error escape
    the app, and gunicorn would answer a finished request with its HTML 500.
    The connection is already invalidated by then; the answer stands.
    """
    try:
        db.session.remove()
    except DATABASE_UNAVAILABLE as error:
        current_app.logger.warning("connection lost while ending a request: %s", type(error).__name__)
        db.session.registry.clear()


def _refuse_dropped_connection(dbapi_connection, connection_record, connection_proxy) -> None:
    # DisconnectionError makes the pool discard this connection and check out
    # (or open) another, up to three times, instead of handing it to the request.
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server closed this pooled connection")


def constraint_name(exc: IntegrityError) -> str | None:
    """The PostgreSQL constraint (or unique index) an IntegrityError names, if psycopg2 says."""
    return getattr(getattr(exc.orig, "diag", None), "constraint_name", None)


def changed_rows(statement: Executable) -> int:
    """Run an UPDATE or DELETE in the request's session: how many rows it changed."""
    return cast(CursorResult, db.session.execute(statement)).rowcount  # what DML gives; typed as any Result
