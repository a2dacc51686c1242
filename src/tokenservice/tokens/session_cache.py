"""The live sessions a worker has seen, kept true by PostgreSQL's LISTEN/NOTIFY.

A guarded request asks PostgreSQL whether its session is live only because
the session may have ended since its token was issued. A worker that is told
when sessions end need not ask again: a read (GET, HEAD) whose session this
worker has found live takes that answer from memory; a write always asks
PostgreSQL (issuing.py decides which).

What keeps the memory true:

- Triggers (migration 0005) send 's:<session id>' when a session ends and
  'u:<user id>' when a user changes or is deleted, at commit; the listener
  forgets those entries.
- A lookup that was under way when any notice came keeps nothing (the
  generation counter): a session ended while a worker was reading it is
  never remembered as live.
- Trust is proven, not assumed. Every PING_SECONDS another connection sends
  a ping to this listener's own channel. Notices arrive in commit order, so a
  ping that came back means every change committed before it was sent has
  been applied. Memory is used only until TRUST_SECONDS after the last ping
  that came back: a listener whose connection died, or stalled, or a
  transaction-pooled PgBouncer (which does not carry LISTEN: the pings never
  come back) leaves every request asking PostgreSQL within TRUST_SECONDS, so
  a revocation is never missed for longer than that.

The listener is a thread (a greenlet under gevent workers) started by the
first lookup, with two connections of its own outside the pool.
"""

import logging
import select
import threading
import time
import uuid
from collections.abc import Callable

from psycopg2.extensions import connection as Connection
from sqlalchemy import event

from ..rules import sessions
from ..storage.extensions import db

CHANNEL = "tokenservice_live"
PING_SECONDS = 0.25
TRUST_SECONDS = 1.0
RETRY_SECONDS = 1.0
# Pings that have not come back by then mean notices do not reach us.
SILENCE_WARNING_SECONDS = 5.0
MAX_ENTRIES = 20_000  # about 1 KB each

log = logging.getLogger("tokenservice.tokens.session_cache")


class SessionCache:
    """Live sessions of one worker: lookups read it, the listener thread keeps it true."""

    def __init__(self, connect: Callable[[], Connection]):
        # connect() opens a psycopg2 connection outside the pool.
        self._connect = connect
        self._lock = threading.Lock()
        self._entries: dict[uuid.UUID, tuple[int, float, object]] = {}  # sid -> (user id, until, user)
        self._by_user: dict[int, set[uuid.UUID]] = {}
        self._generation = 0
        self._trusted_until = 0.0  # time.monotonic()
        self._ping_counts = {"sent": 0, "in_time": 0}  # of the current listener connection
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # The request side.

    def lookup(self, user_id: int, session_id: uuid.UUID, until: float, query: Callable, freeze: Callable):
        """The user of a live session, from memory while it is trusted, else from `query()`.

        `until` (epoch seconds) is as long as the session is known to stay
        live unless it ends; `freeze(user)` makes the copy to remember.
        """
        if self._thread is None:
            self._start()
        if time.monotonic() >= self._trusted_until:
            return query()
        entry = self._entries.get(session_id)
        if entry is not None and entry[0] == user_id and time.time() < entry[1]:
            return entry[2]
        generation = self._generation
        user = query()
        if user is not None and time.time() < until:
            frozen = freeze(user)
            with self._lock:
                # Nothing was forgotten while we asked, and the listener is still proven.
                if self._generation == generation and time.monotonic() < self._trusted_until:
                    if len(self._entries) >= MAX_ENTRIES:
                        self._entries.clear()
                        self._by_user.clear()
                    self._entries[session_id] = (user_id, until, frozen)
                    self._by_user.setdefault(user_id, set()).add(session_id)
        return user

    def forget_user(self, user_id: int) -> None:
        with self._lock:
            self._generation += 1
            for session_id in self._by_user.pop(user_id, ()):
                self._entries.pop(session_id, None)

    def forget_session(self, session_id: uuid.UUID) -> None:
        with self._lock:
            self._generation += 1
            entry = self._entries.pop(session_id, None)
            if entry is not None:
                self._by_user.get(entry[0], set()).discard(session_id)

    @property
    def trusted(self) -> bool:
        return time.monotonic() < self._trusted_until

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # The listener.

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen_forever, name="session-cache", daemon=True)
                self._thread.start()

    def _distrust(self) -> None:
        with self._lock:
            self._trusted_until = 0.0
            self._generation += 1
            self._entries.clear()
            self._by_user.clear()

    def _listen_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception as error:  # the connection failed or was lost: ask PostgreSQL until it is back
                log.warning("session cache off until PostgreSQL can be listened to again: %s", type(error).__name__)
            self._distrust()
            self._stopping.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        listener = pinger = None
        try:
            listener, pinger = self._connect(), self._connect()
            pings = f"{CHANNEL}_{uuid.uuid4().hex}"  # this listener's own channel
            with listener.cursor() as cursor:
                cursor.execute("SET application_name = 'tokenservice-listener'")
                cursor.execute(f"LISTEN {CHANNEL}; LISTEN {pings}")
            sent: dict[str, float] = {}
            counts = self._ping_counts = {"sent": 0, "in_time": 0}
            started = next_ping = time.monotonic()
            warned = False
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= next_ping:
                    token = uuid.uuid4().hex
                    sent = {key: at for key, at in sent.items() if now - at < TRUST_SECONDS}
                    sent[token] = now
                    with pinger.cursor() as cursor:
                        cursor.execute("SELECT pg_notify(%s, %s)", (pings, token))
                    counts["sent"] += 1
                    next_ping = now + PING_SECONDS
                    if not warned and not self.trusted and now - started > SILENCE_WARNING_SECONDS:
                        warned = True
                        # What was measured, not a guess at why: none at all back is what a
                        # transaction-pooled PgBouncer gives; some, late, an overloaded worker or database.
                        log.warning(
                            "session cache off: of %d pings sent through PostgreSQL in %.0f s, %d came back "
                            "through LISTEN within %.0f s (the rest came late or not at all); every request "
                            "asks PostgreSQL until they come back in time",
                            counts["sent"],
                            now - started,
                            counts["in_time"],
                            TRUST_SECONDS,
                        )
                readable, _, _ = select.select([listener], [], [], max(0.0, next_ping - time.monotonic()))
                if readable:
                    listener.poll()
                    while listener.notifies:
                        notice = listener.notifies.pop(0)
                        self._apply(notice.channel, notice.payload, sent, pings)
        finally:
            for connection in (listener, pinger):
                if connection is not None:
                    try:
                        connection.close()
                    except Exception:  # noqa: S110 (closing a connection that is already lost)
                        pass

    def _apply(self, channel: str, payload: str, sent: dict[str, float], pings: str) -> None:
        if channel == pings:
            at = sent.pop(payload, None)
            if at is not None and time.monotonic() - at < TRUST_SECONDS:
                self._ping_counts["in_time"] += 1
                self._trusted_until = max(self._trusted_until, at + TRUST_SECONDS)
        elif payload.startswith("s:"):
            self.forget_session(uuid.UUID(payload[2:]))
        elif payload.startswith("u:"):
            self.forget_user(int(payload[2:]))


def init_app(app, engine) -> None:
    """Give the app a SessionCache when SESSION_CACHE is on; its connections come from `engine`, outside the pool."""
    if not app.config["SESSION_CACHE"]:
        return

    def connect():
        connection = engine.raw_connection()
        connection.detach()  # the listener's own, for as long as it lives; close() really closes it
        connection.dbapi_connection.autocommit = True
        return connection

    app.extensions["session_cache"] = SessionCache(connect)
    # On the app's own session (Flask-SQLAlchemy's, one for every app in the process: registered once).
    if not event.contains(db.session, "after_flush", sessions.forget_changed_users):
        event.listen(db.session, "after_flush", sessions.forget_changed_users)
