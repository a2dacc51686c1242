"""Each worker's memory of live sessions (tokens/session_cache.py): reads with no query, no revocation missed past 1 s.

In-process tests, with a real PostgreSQL and the real listener, whose
connection one of them kills; servers/test_session_cache_served.py runs
gunicorn (two instances, two workers each) and PgBouncer in transaction mode.
"""

import time
import uuid
from datetime import UTC, datetime

import pytest
from helpers import WITHIN, assert_refused, bearer, claims_of, forge, sql_statements, wait_for
from sqlalchemy import text, update

from tokenservice.storage.extensions import db
from tokenservice.storage.models import LoginSession, User


@pytest.fixture
def cached(make_app):
    """An app with the session cache on, once its listener is proven; stopped afterwards."""
    app = make_app(SESSION_CACHE="true")
    cache = app.extensions["session_cache"]
    yield app
    cache.stop()


@pytest.fixture
def remembered(cached, auth):
    """alice logged in through the cached app's client, her session already in memory: (client, her Login)."""
    auth.add_user("alice")
    client = cached.test_client()
    alice = auth.login(client=client)
    warm(cached, client, alice.headers)
    return client, alice


def warm(app, client, headers) -> None:
    """One read that asks PostgreSQL once the listener is trusted, so the next is served from memory."""
    cache = app.extensions["session_cache"]
    client.get("/me", headers=headers)  # starts the listener
    wait_for(lambda: cache.trusted, timeout=10)
    assert client.get("/me", headers=headers).status_code == 200
    with sql_statements(app) as statements:
        assert client.get("/me", headers=headers).status_code == 200
    assert statements == []


def test_a_read_of_a_known_live_session_makes_no_query(cached, remembered):
    client, alice = remembered
    with sql_statements(cached) as statements:
        assert client.get("/protected", headers=alice.headers).json["username"] == "alice"
    assert statements == []


def test_writes_always_ask_postgresql(cached, auth, database):
    alice_id = auth.add_user("alice")
    client = cached.test_client()
    alice = auth.login(client=client)
    warm(cached, client, alice.headers)
    with sql_statements(cached) as statements:
        client.patch("/me", json={"name": "Alice"}, headers=alice.headers)
    assert any("live_session_user" in statement for statement in statements)
    database.execute(update(User).where(User.id == alice_id).values(is_active=False))
    # At once, without waiting for the notice: a write does not use the memory.
    assert_refused(client.patch("/me", json={"name": "Eve"}, headers=alice.headers))


def test_a_logout_in_this_worker_is_refused_at_once(remembered):
    client, alice = remembered
    assert client.post("/logout", headers=alice.headers).status_code == 204
    assert_refused(client.get("/me", headers=alice.headers))


def test_a_name_changed_here_is_read_back_at_once(remembered):
    client, alice = remembered
    assert client.patch("/me", json={"name": "Alice A."}, headers=alice.headers).status_code == 200
    assert client.get("/me", headers=alice.headers).json["name"] == "Alice A."


@pytest.mark.parametrize(
    "change",
    ["end the session", "deactivate the user", "delete the user", "demote the admin"],
)
def test_a_change_made_elsewhere_is_seen_within_a_second(cached, auth, database, change):
    admin_id = auth.add_user("root", role="admin")
    client = cached.test_client()
    root = auth.login("root", client=client)
    warm(cached, client, root.headers)
    assert client.get("/users", headers=root.headers).status_code == 200
    changed_at = time.monotonic()
    if change == "end the session":
        database.execute(update(LoginSession).values(ended_at=datetime.now(UTC)))
    elif change == "deactivate the user":
        database.execute(update(User).where(User.id == admin_id).values(is_active=False))
    elif change == "delete the user":
        database.execute(text("DELETE FROM users WHERE id = :id").bindparams(id=admin_id))
    else:
        database.execute(update(User).where(User.id == admin_id).values(role="user"))
    route = "/users" if change == "demote the admin" else "/me"
    wait_for(lambda: client.get(route, headers=root.headers).status_code in (401, 403), timeout=WITHIN)
    assert time.monotonic() - changed_at < WITHIN


def test_a_session_ended_while_it_is_being_read_is_not_remembered(cached, auth, database):
    """The lookup's query returns a live session, but the session ends (and the notice arrives) before it is kept."""
    auth.add_user("alice")
    client = cached.test_client()
    alice = auth.login(client=client)
    client.get("/me", headers=alice.headers)
    cache = cached.extensions["session_cache"]
    wait_for(lambda: cache.trusted, timeout=10)
    with cached.app_context():
        user = db.session.get(User, 1)
        db.session.expunge(user)
    session_id = database.scalar(text("SELECT id FROM sessions"))
    notices_before = cache._generation

    def query_overtaken_by_a_logout():
        database.execute(update(LoginSession).values(ended_at=datetime.now(UTC)))
        wait_for(lambda: cache._generation > notices_before, timeout=WITHIN)  # the listener heard it
        return user  # what PostgreSQL said before the logout committed

    until = time.time() + 60
    assert cache.lookup(1, session_id, until, query_overtaken_by_a_logout, lambda user: user) is user
    asked = []
    cache.lookup(1, session_id, until, lambda: asked.append(1), lambda user: user)
    assert asked == [1]  # not remembered: asked again


def test_a_listener_that_lost_its_connection_is_not_trusted(cached, remembered, auth, database):
    client, alice = remembered
    cache = cached.extensions["session_cache"]
    terminate_listeners(database)
    # The session ends while nobody listens: no notice will ever come for it.
    database.execute(update(LoginSession).values(ended_at=datetime.now(UTC)))
    wait_for(lambda: client.get("/me", headers=alice.headers).status_code == 401, timeout=WITHIN)
    # It listens again by itself, and serves from memory again.
    other = auth.login(client=client)
    wait_for(lambda: cache.trusted, timeout=10)
    warm(cached, client, other.headers)


def terminate_listeners(database) -> int:
    return database.scalar(
        text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name").bindparams(
            name="tokenservice-listener"
        )
    )


def test_a_full_memory_starts_afresh(cached, remembered, monkeypatch):
    client, alice = remembered
    cache = cached.extensions["session_cache"]
    monkeypatch.setattr("tokenservice.tokens.session_cache.MAX_ENTRIES", 3)
    until = time.time() + 60
    for user_id in range(100, 103):
        cache.lookup(user_id, uuid.uuid4(), until, lambda: "a user", lambda user: user)
    assert len(cache._entries) == 1  # the third found 3 already (alice's and two), and started afresh


def test_a_token_without_iat_is_checked_in_postgresql(cached, remembered):
    """No iat, no bound on how long its session is known to live: never from memory, and never a 500."""
    client, alice = remembered
    no_iat = forge(claims_of(alice.access_token), iat=None)
    for _ in range(2):
        with sql_statements(cached) as statements:
            assert client.get("/me", headers=bearer(no_iat)).status_code == 200
        assert any("live_session_user" in statement for statement in statements)
