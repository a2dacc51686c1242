"""The pooled PostgreSQL connections: a connection the server has dropped is replaced before a request uses it.

After pg_terminate_backend, a failover, a Heroku Postgres maintenance or a
PgBouncer restart, every idle pooled connection is dead, and each worker
would answer its next request with a 503 before the pool noticed. A dead
connection has something to read (the server's goodbye, or end of file)
while it sits idle in the pool, where a live one has nothing: one select()
with no wait tells them apart in about a microsecond. SQLAlchemy's
pool_pre_ping would ask with a SELECT 1, a round trip on every request
(26 µs on loopback, a network round trip on Heroku); README, "Running in
production".
"""

import select

from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from .extensions import db


def init_app(app: Flask) -> None:
    with app.app_context():
        event.listen(db.engine, "checkout", _refuse_dropped_connection)


def _refuse_dropped_connection(dbapi_connection, connection_record, connection_proxy) -> None:
    # DisconnectionError makes the pool discard this connection and check out
    # (or open) another, up to three times, instead of handing it to the request.
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server closed this pooled connection")
