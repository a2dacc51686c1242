"""Pooled connections the server dropped (pg_terminate_backend, a failover, a PgBouncer restart) cost no request."""

import pytest
from helpers import PASSWORD, terminate_service_connections
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from werkzeug.security import generate_password_hash

from tokenservice.rules import passwords
from tokenservice.storage.extensions import db
from tokenservice.storage.models import User


def test_the_next_requests_after_the_kill_all_succeed(client, alice, database_url):
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert terminate_service_connections(database_url) >= 1
    assert [client.get("/me", headers=alice.headers).status_code for _ in range(10)] == [200] * 10


def test_a_connection_dropped_after_the_answer_was_made_leaves_the_answer(make_app, alice, database_url):
    app = make_app()

    @app.after_request
    def drop_the_connection(response):  # between the answer and the session's end, as a failover might
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        terminate_service_connections(database_url, [pid])
        return response

    response = app.test_client().get("/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json["username"] == "alice"


def test_sql_errors_do_not_show_their_parameters(app):
    with app.app_context():
        with pytest.raises(DBAPIError) as raised:
            db.session.execute(text("SELECT 1 / 0 WHERE :secret <> ''"), {"secret": "a-password-hash"})
        db.session.rollback()
    assert "division by zero" in str(raised.value)
    assert "a-password-hash" not in str(raised.value)


def test_each_worker_opens_at_most_8_connections_and_waits_at_most_10_s(app):
    with app.app_context():
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (5, 1, 10)  # and 2 for the session cache


class PoolWatch:
    """The pooled connections an app holds at once during each request, and at each password hash.

    The test client serves one request at a time in this thread, so what the
    pool has checked out is what that request holds.
    """

    def __init__(self, app, monkeypatch):
        with app.app_context():
            self.engine = db.engine
        self.held = 0
        self.most = 0
        self.while_hashing: list[int] = []
        event.listen(self.engine, "checkout", self._checkout)
        event.listen(self.engine, "checkin", self._checkin)
        for name in ("argon2_hash", "argon2_matches", "check_password_hash"):
            monkeypatch.setattr(passwords, name, self._recording(getattr(passwords, name)))

    def _checkout(self, *args):
        self.held += 1
        self.most = max(self.most, self.held)

    def _checkin(self, *args):
        self.held -= 1

    def _recording(self, hashing):
        def recorded(*args):
            self.while_hashing.append(self.held)
            return hashing(*args)

        return recorded

    def start(self):
        self.most = self.held
        self.while_hashing.clear()

    def close(self):
        event.remove(self.engine, "checkout", self._checkout)
        event.remove(self.engine, "checkin", self._checkin)


@pytest.fixture
def watched(limited_app, monkeypatch):
    """An app with every limit on (the failed-login count takes a connection), and its PoolWatch."""
    app = limited_app(TOKEN_RATE_LIMIT="1000 per minute", LOGIN_FAILURE_LIMIT="3 per minute")
    watch = PoolWatch(app, monkeypatch)
    yield app, watch
    watch.close()


def test_a_request_holds_at_most_one_connection_and_none_while_a_password_is_hashed(watched, auth, database):
    """Every route that hashes or counts failures, on each of its paths: never two connections, none at a hash."""
    app, watch = watched
    client = app.test_client()
    auth.add_user("root", role="admin")
    legacy_id = auth.add_user("legacy", password_hash=generate_password_hash(PASSWORD))
    root, alice_id = auth.login("root", client=client), auth.add_user("alice")
    device = auth.login("alice", client=client).tokens["device_token"]
    alice = auth.login("alice", client=client)

    def password_change(current, new="another passphrase"):
        return {"current_password": current, "new_password": new}

    requests = {
        "login": ("POST", "/token", {"username": "alice", "password": PASSWORD}, None, 200),
        "login with a device token": (
            "POST",
            "/token",
            {"username": "alice", "password": PASSWORD, "device_token": device},
            None,
            200,
        ),
        "login that re-hashes a legacy hash": (
            "POST",
            "/token",
            {"username": "legacy", "password": PASSWORD},
            None,
            200,
        ),
        "wrong password": ("POST", "/token", {"username": "alice", "password": "wrong"}, None, 401),
        "unknown username": ("POST", "/token", {"username": "nobody", "password": "wrong"}, None, 401),
        "registration": ("POST", "/users", {"username": "bob", "password": PASSWORD}, None, 201),
        "registration by an admin": (
            "POST",
            "/users",
            {"username": "eve", "password": PASSWORD, "role": "user"},
            root,
            201,
        ),
        "admin sets a password": ("PATCH", f"/users/{legacy_id}", {"password": "a new passphrase"}, root, 200),
        "wrong current password": ("POST", "/me/password", password_change("wrong"), alice, 400),
        "password change": ("POST", "/me/password", password_change(PASSWORD), alice, 204),
        "logout everywhere": ("POST", "/logout?all=true", None, alice, 204),
    }
    for _ in range(3):
        client.post("/token", json={"username": "carol", "password": "wrong"})
    requests["throttled login"] = ("POST", "/token", {"username": "carol", "password": "wrong"}, None, 429)
    for name, (method, path, body, session, status) in requests.items():
        watch.start()
        response = client.open(path, method=method, json=body, headers=session.headers if session else {})
        assert response.status_code == status, (name, response.json)
        assert watch.most == 1, name
        assert all(held == 0 for held in watch.while_hashing), (name, watch.while_hashing)
        hashes = {"throttled login": 0, "logout everywhere": 0, "login that re-hashes a legacy hash": 2}
        expected = hashes.get(name, 2 if name == "password change" else 1)
        assert len(watch.while_hashing) == expected, (name, watch.while_hashing)
    assert database.get(User, alice_id) is not None
