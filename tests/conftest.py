"""The tiers, and the fixtures: a real PostgreSQL, the app built from an environment, clients, and the shared helpers.

Each test is in the tier of its folder, and carries that tier's marker (TIERS
below): `pytest -m "not servers"` runs the first two. A unit test that asks
for a database fixture stops the run.

The suite uses TEST_DATABASE_URL when it is set (and wipes that database),
otherwise an embedded PostgreSQL of its own that is deleted at the end.

- `auth` (AuthActions): users, logins, refreshes and second factors, in the spirit of flaskr's tests;
  `auth_for(app)` the same for another app;
- `database` (Database): reading and changing rows from outside a request;
- `make_app`, `limited_app`: apps built from the base environment plus variables (limited_app: rate limits on);
- `alice`, `admin`: a logged-in user and a logged-in admin (Login);
- `pairs`, `alg`: RS256 and ES256 key pairs, and each of the two algorithms in turn;
- `redis_db`: the rate limit tests' database of the machine's Redis (REDIS_URL), empty.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import flask_migrate
import pytest
import redis
from helpers import (
    MAIL_ENVIRON,
    MFA_KEY,
    PASSWORD,
    REDIS_URL,
    SECRET,
    basic,
    bearer,
    claims_of,
    steady_step,
    totp_code,
    variables_read,
)
from smtp_server import Mailbox, Outbox
from sqlalchemy import text

from tokenservice import create_app
from tokenservice.rules.clients import create_client
from tokenservice.rules.passwords import hash_password
from tokenservice.storage.extensions import db
from tokenservice.storage.models import User
from tokenservice.tokens.key_pairs import generate

# The suite starts from a known environment: `pipenv run` loads a developer's
# .env into this process, and so into every server a test starts. None of
# the service's settings may come from there (deployment.py blanks them for
# `flask`, which reads .env by itself).
for _name in variables_read():
    os.environ.pop(_name, None)

# Each folder of tests/ is a tier, named after what its tests need; in the order they run.
TIERS = {
    "unit": "tests/unit/: needs no database and starts no process (no app, no PostgreSQL)",
    "app": "tests/app/: the app in-process on the real PostgreSQL (Flask's test client, conftest's fixtures)",
    "servers": (
        "tests/servers/: real processes and servers (gunicorn, flask and pipenv commands, Chromium, an embedded "
        "PostgreSQL, PgBouncer, several instances, floods, slow clients, outages)"
    ),
}
# What a unit test may not ask for: each of them is, or needs, the test database.
DATABASE_FIXTURES = {
    "app",
    "client",
    "database",
    "auth",
    "auth_for",
    "make_app",
    "database_url",
    "alice",
    "admin",
    "outbox",
}
TESTS = Path(__file__).resolve().parent


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the folder of tests/ it is in (None outside the tiers' folders)."""
    parts = Path(path).resolve().relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def pytest_configure(config):
    for tier, needs in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: {needs}")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the markers added here
def pytest_collection_modifyitems(config, items):
    """Mark each test with its folder's tier, refuse a unit test that needs the database, run the fast tiers first."""
    for item in items:
        tier = tier_of(item.path)
        if tier is None:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in one of tests/{{{','.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))
        needed = DATABASE_FIXTURES.intersection(item.fixturenames)
        if tier == "unit" and needed:
            raise pytest.UsageError(
                f"{item.nodeid} is in tests/unit/, which needs no database, but it asks for "
                f"{', '.join(sorted(needed))}: move it to tests/app/ (or tests/servers/ if it starts a process)"
            )
    order = list(TIERS)
    items.sort(key=lambda item: order.index(tier_of(item.path)))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from tokenservice.storage import embedded_db

    return embedded_db.start(tmp_path_factory.mktemp("embedded") / "pgdata", delete_on_exit=True)


@pytest.fixture(scope="session")
def base_environ(database_url):
    """The environment of a production deployment (DATABASE_URL is set).

    Rate limits are off here, since the suite logs in from one address
    hundreds of times a minute; test_rate_limits.py turns them on. So is the
    session cache, which lets a read miss a revocation made outside this
    process for up to a second, where tests change rows and read at once;
    test_session_cache.py turns it on. Servers that deployment.py starts run
    with both on, as deployed. Mail is configured, as deployed, but no sender
    runs in this process: the outbox fills, and a test that reads mail sends
    it to its own SMTP server (smtp_server.py). Sign-in alerts are off, so
    that a test's logins queue no mail beside what it counts;
    test_signin_alerts.py turns them on.
    """
    return {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": SECRET,
        "MFA_KEY": MFA_KEY,
        "RATELIMIT_ENABLED": "false",
        "SESSION_CACHE": "false",
        "SIGNIN_ALERTS": "false",
        **MAIL_ENVIRON,
    }


@pytest.fixture(scope="session")
def app(base_environ):
    app = create_app(base_environ)
    app.config["TESTING"] = True
    with app.app_context():
        # Start every run from nothing, through the migrations.
        db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
        flask_migrate.upgrade()
    return app


@pytest.fixture(autouse=True)
def clean_database(request):
    """Each test starts with no users, sessions, failed logins, mails or clients; not a unit test (no database)."""
    if tier_of(request.path) == "unit":
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.execute(text("TRUNCATE users, sessions, login_failures, outbox, clients RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture
def make_app(base_environ):
    """Build an app from the base environment plus (or minus, with None) variables."""
    built = []

    def make(**changes):
        environ = {**base_environ, **changes}
        app = create_app({key: value for key, value in environ.items() if value is not None})
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield make
    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def mailbox():
    """A real SMTP server on loopback, for this test (smtp_server.py)."""
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def outbox(make_app, mailbox) -> Outbox:
    return Outbox(make_app(SMTP_URL=mailbox.smtp_url), mailbox)


@pytest.fixture
def limited_app(make_app):
    """make_app with the rate limits on, as deployed (the base environment has them off): limited_app(limits, **changes)
    builds an app with these limits (TOKEN_RATE_LIMIT, LOGIN_FAILURE_LIMIT...), then make_app's changes."""

    def make(limits: dict | None = None, **changes):
        return make_app(**{"RATELIMIT_ENABLED": "true", **(limits or {}), **changes})

    return make


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def app_log(caplog):
    """caplog for the app's own logger, which writes to stdout itself and does not propagate."""
    logger = logging.getLogger("tokenservice")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Database:
    """The test database seen from outside any request: each call runs and commits on its own."""

    def __init__(self, app):
        self.app = app

    def execute(self, statement) -> int:
        """Run a change (an update, a delete...) and commit it; returns the rows it touched."""
        with self.app.app_context():
            rowcount = db.session.execute(statement).rowcount
            db.session.commit()
            return rowcount

    def scalar(self, statement):
        with self.app.app_context():
            return db.session.execute(statement).scalar()

    def scalars(self, statement) -> list:
        with self.app.app_context():
            return list(db.session.execute(statement).scalars())

    def get(self, model, ident):
        with self.app.app_context():
            return db.session.get(model, ident)

    def wait_for_a_lock_waiter(self, *, until: threading.Event | None = None, timeout: float = 10) -> None:
        """Return once another connection waits for a row lock (or `until` is set): the signal that a race is lined up.

        `until` is the other way the race can go, for example the second
        request getting past a check that a missing lock would not hold it at.
        """
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        deadline = time.monotonic() + timeout
        while not self.scalar(waiting):
            if until is not None and until.is_set():
                return
            assert time.monotonic() < deadline, "no request started waiting for a row lock"
            time.sleep(0.01)


@pytest.fixture
def database(app):
    return Database(app)


@dataclass(frozen=True)
class Login:
    """A successful POST /token: a new session's tokens."""

    tokens: dict

    @property
    def id(self) -> int:
        return self.tokens["user_id"]

    @property
    def access_token(self) -> str:
        return self.tokens["access_token"]

    @property
    def refresh_token(self) -> str:
        return self.tokens["refresh_token"]

    @property
    def headers(self) -> dict:
        return bearer(self.access_token)

    @property
    def refresh_headers(self) -> dict:
        return bearer(self.refresh_token)

    @property
    def claims(self) -> dict:
        return claims_of(self.access_token)


class AuthActions:
    """Users and logins for tests, through the same routes a client uses (flaskr's AuthActions)."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def add_user(self, username="alice", password=PASSWORD, *, password_hash=None, **columns) -> int:
        """Insert a user directly (any role, any hash); returns its id."""
        with self.app.app_context():
            user = User(username=username, password_hash=password_hash or hash_password(password), **columns)
            db.session.add(user)
            db.session.commit()
            return user.id

    def register(self, username="alice", password=PASSWORD, *, client=None, headers=None, **body):
        """POST /users; returns the response."""
        json = {"username": username, "password": password, **body}
        return (client or self.client).post("/users", json=json, headers=headers)

    def token(self, username="alice", password=PASSWORD, *, client=None, headers=None, **body):
        """POST /token with JSON credentials and `body` (otp, recovery_code...); returns the response as it is."""
        body = {"username": username, "password": password, **body}
        return (client or self.client).post("/token", json=body, headers=headers)

    def login(self, username="alice", password=PASSWORD, *, client=None, headers=None, **body) -> Login:
        """POST /token, which must succeed; returns the new session's Login."""
        response = self.token(username, password, client=client, headers=headers, **body)
        assert response.status_code == 200, response.json
        return Login(response.json)

    def enrol(self, login: Login, *, step_offset: int = 0) -> tuple[str, list[str]]:
        """Turn on a second factor for the login's user, confirmed with the code of the step now + `step_offset`
        (call steady_step() first); returns its secret and recovery codes."""
        started = self.client.post("/me/mfa/totp", headers=login.headers)
        assert started.status_code == 200, started.json
        secret = started.json["secret"]
        code = totp_code(secret, steady_step() + step_offset)
        confirmed = self.client.post("/me/mfa/totp/confirm", json={"code": code}, headers=login.headers)
        assert confirmed.status_code == 200, confirmed.json
        return secret, confirmed.json["recovery_codes"]

    def add_client(self, *scopes: str, name: str = "cron") -> tuple[str, str]:
        """Create a client with these scopes (as `flask clients create` does); its id and secret."""
        with self.app.app_context():
            new = create_client(name=name, scopes=list(scopes))
            db.session.commit()
            return new.client.id, new.secret

    def client_token(self, client_id: str, secret: str, **form):
        """POST /token with grant_type=client_credentials and HTTP Basic (and `form`: scope); the response."""
        body = {"grant_type": "client_credentials", **form}
        return self.client.post("/token", data=body, headers=basic(client_id, secret))

    def refresh(self, refresh_token: str, *, client=None):
        """POST /token/refresh with the refresh token in Authorization: Bearer; returns the response."""
        return (client or self.client).post("/token/refresh", headers=bearer(refresh_token))

    def grant(self, refresh_token: str, *, client=None):
        """The same through POST /token, JSON grant_type=refresh_token; returns the response."""
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return (client or self.client).post("/token", json=body)


@pytest.fixture
def auth(app, client):
    return AuthActions(app, client)


@pytest.fixture
def auth_for():
    """AuthActions for another app than the session's (make_app's, limited_app's): auth_for(app)."""
    return lambda app: AuthActions(app, app.test_client())


@pytest.fixture
def alice(auth) -> Login:
    """A registered, logged-in user named alice."""
    auth.add_user("alice")
    return auth.login("alice")


@pytest.fixture
def admin(auth) -> Login:
    """A logged-in admin named root."""
    auth.add_user("root", role="admin")
    return auth.login("root")


@pytest.fixture(scope="module")
def pairs():
    """Two key pairs per algorithm, as PEM text: {alg: [(private, public, kid), ...]}."""
    made = {alg: [generate(alg) for _ in range(2)] for alg in ("RS256", "ES256")}
    return {alg: [(p.decode(), q.decode(), kid) for p, q, kid in pairs] for alg, pairs in made.items()}


@pytest.fixture(params=["RS256", "ES256"])
def alg(request):
    """Each asymmetric algorithm in turn (a test that takes it runs once for each)."""
    return request.param


@pytest.fixture
def redis_db():
    """A client of REDIS_URL's database, emptied before and after the test."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
