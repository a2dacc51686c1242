"""What the tests share: the contract's constants, token tools and assertions.

The expected values are written here once, as docs/api.md states them, not
imported from the code they check.
"""

import base64
import contextlib
import hashlib
import hmac
import re
import struct
import time
import uuid
from pathlib import Path

import jwt as pyjwt
from sqlalchemy import create_engine, event, text

from tokenservice.config import normalise_database_url
from tokenservice.rules import passwords, users
from tokenservice.storage.extensions import db
from tokenservice.tokens.session_cache import TRUST_SECONDS
from tokenservice.web import guards
from tokenservice.web.routes import BLUEPRINTS

ROOT = Path(__file__).resolve().parents[1]
SECRET = "tests-only-secret-long-enough-for-hs256-and-for-forging-hs512-tokens"
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "not the password"
WRONG_LOGIN = {"username": "alice", "password": WRONG_PASSWORD}
REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the machine's Redis that only the rate limit tests use
# A revocation reaches every worker's session cache within TRUST_SECONDS; allow for a loaded machine.
WITHIN = TRUST_SECONDS + 1.0
OTHER_KEY = "another-secret-that-is-also-long-enough-for-hs256"
MFA_KEY = "tests-only-key-for-second-factor-secrets"

# Mail configured as deployed (conftest's apps), to a port where nothing listens, and no sender in the process.
MAIL_ENVIRON = {
    "SMTP_URL": "smtp://127.0.0.1:9?starttls=false",
    "MAIL_FROM": "tokenservice <no-reply@tokenservice.test>",
    "PUBLIC_URL": "http://localhost",
    "MAIL_SENDER_IN_WEB": "false",
}
USER_FIELDS = {
    "id",
    "username",
    "name",
    "role",
    "is_active",
    "email",
    "email_verified",
    "mfa",
    "created_at",
    "updated_at",
}
TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "token", "user_id"}
LOGIN_FIELDS = TOKEN_FIELDS | {"device_token"}  # a password login's answer; a refresh's has TOKEN_FIELDS
ACCESS_CLAIMS = {"sub", "iat", "nbf", "exp", "jti", "type", "fresh", "role", "sid", "amr"}

# How the service's code reads an environment variable: environ.get("X"),
# environ["X"], or _helper(environ, "X"); request.environ is WSGI's, not the process's.
_READS = re.compile(r"""(?<!request\.)environ(?:\.get\(|\[|, )\s*["']([A-Z][A-Z0-9_]*)["']""")


def variables_read() -> set[str]:
    """Every environment variable the service's code reads (config.py, gunicorn.conf.py...), found in its source."""
    return {name for path in (ROOT / "src").rglob("*.py") for name in _READS.findall(path.read_text())}


# The WWW-Authenticate challenges (RFC 6750 3.1), as docs/api.md's error table words them.
NO_TOKEN = 'Bearer realm="api"'
BAD_TOKEN = 'Bearer realm="api", error="invalid_token"'
INSUFFICIENT_SCOPE = 'Bearer realm="api", error="insufficient_scope"'
CHALLENGES = {"authorization_required": NO_TOKEN, "invalid_token": BAD_TOKEN, "token_expired": BAD_TOKEN}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def forge(claims: dict, *, key: str | None = SECRET, algorithm: str = "HS256", **changes) -> str:
    """Re-sign `claims` with `changes` applied (a None value removes the claim)."""
    payload = {**claims, **changes}
    payload = {name: value for name, value in payload.items() if value is not None}
    return pyjwt.encode(payload, key, algorithm=algorithm)


def now() -> int:
    return int(time.time())


# The ways of tampering with one of this service's tokens that every guard must refuse (tamper's `how`).
TAMPERINGS = ["other-key", "alg-none", "hs512", "not-yet-valid"]


def tamper(claims: dict, how: str) -> str:
    """The claims of a real token, re-signed as TAMPERINGS names: with another key, with no signature (alg none),
    with HS512 and the right key, or as not valid for another ten minutes."""
    changes = {
        "other-key": {"key": OTHER_KEY},
        "alg-none": {"key": None, "algorithm": "none"},
        "hs512": {"algorithm": "HS512"},
        "not-yet-valid": {"nbf": now() + 600},
    }[how]
    return forge(claims, **changes)


def tampered(token: str) -> str:
    """The same token (a JWT or a device token) with the end of its signature changed.

    Two characters: the last base64url character of a 32-byte MAC carries two
    bits that no MAC uses, and a decoder may ignore them.
    """
    return token[:-2] + ("AA" if token[-2:] != "AA" else "BB")


def assert_error(response, status: int, error: str) -> None:
    """The one error shape: JSON with a stable code and a sentence, nothing else leaking."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json"
    assert response.json["error"] == error, response.json
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert "Traceback" not in response.get_data(as_text=True)


def assert_refused(response, error: str = "invalid_token") -> None:
    """A 401 with `error` and the challenge docs/api.md's error table gives for it."""
    assert_error(response, 401, error)
    assert response.headers["WWW-Authenticate"] == CHALLENGES[error]


def assert_forbidden(response) -> None:
    """A 403 for a valid token without the needed role."""
    assert_error(response, 403, "forbidden")
    assert response.headers["WWW-Authenticate"] == INSUFFICIENT_SCOPE


SESSION_ID = str(uuid.UUID(int=1))  # api_routes' <session_id>: of no session
CLIENT_ID = "tsc_" + "A" * 22  # api_routes' <client_id>: of no client

# The guards that need a token (web/guards.py), and the API routes read from the app itself.
ACCESS_GUARDS = {
    guards.ACCESS_TOKEN,
    guards.FRESH_ACCESS_TOKEN,
    guards.SECOND_FACTOR,
    guards.ADMIN,
    guards.ADMIN_OR_USER_READER,
}
ADMIN_GUARDS = {guards.ADMIN, guards.ADMIN_OR_USER_READER}  # what an ordinary user's token is refused by (403)
TOKEN_GUARDS = {*ACCESS_GUARDS, guards.REFRESH_TOKEN, guards.SESSION_TOKEN}


def api_routes(app, wanted=None) -> list[tuple[str, str, guards.Guard]]:
    """(method, path with <user_id> and <session_id> filled in, guard) for every API route, or those `wanted` guards."""
    api = {blueprint.name for blueprint in BLUEPRINTS}
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in api:
            continue
        guard = app.view_functions[rule.endpoint].guard
        if wanted is None or guard in wanted:
            path = rule.rule.replace("<int:user_id>", "1").replace("<uuid:session_id>", SESSION_ID)
            path = path.replace("<client_id>", CLIENT_ID)
            routes.extend((method, path, guard) for method in sorted(rule.methods - {"HEAD", "OPTIONS"}))
    return routes


def call(client, method: str, path: str, token: str | None = None):
    """One request to a route, with a bearer token if given and an empty JSON body where one is read."""
    headers = bearer(token) if token else {}
    return client.open(path, method=method, headers=headers, json={} if method in ("POST", "PATCH") else None)


TOTP_STEP = 30  # seconds (RFC 6238's default, which the service uses)


def steady_step(margin: float = 4) -> int:
    """The current TOTP time step, after waiting (at most `margin` s) until `margin` seconds of it are left, so that
    codes a test computes from it stay what the service computes while the test runs."""
    left = TOTP_STEP - time.time() % TOTP_STEP
    if left < margin:
        time.sleep(left + 0.05)
    return int(time.time() // TOTP_STEP)


def totp_code(secret: str, step: int) -> str:
    """The 6-digit code of a base32 `secret` for a time step, as RFC 6238 (and 4226) computes it: not with the
    library the service uses, so that a misuse of it shows."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def wait_for(condition, timeout: float = 15):
    """Poll until condition() is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextlib.contextmanager
def sql_statements(app):
    """The SQL statements the app's engine runs inside the block: a list, filled as they run."""
    with app.app_context():
        engine = db.engine
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


SERVICE_BACKENDS = (
    "FROM pg_stat_activity WHERE application_name = 'tokenservice' "
    "AND datname = current_database() AND pid <> pg_backend_pid()"
)


def terminate_service_connections(database_url: str, pids: list[int] | None = None) -> int:
    """What a maintenance or failover does to the service's connections (or to `pids`); returns once they are gone."""
    # Autocommit: pg_stat_activity is read once per transaction.
    engine = create_engine(normalise_database_url(database_url), isolation_level="AUTOCOMMIT")
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
    with engine.connect() as connection:
        if pids is None:
            pids = connection.execute(text(f"SELECT pid {SERVICE_BACKENDS}")).scalars().all()
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(:pids) AS pid"), {"pids": pids})
        deadline = time.monotonic() + 10
        while connection.execute(alive, {"pids": pids}).scalar():
            assert time.monotonic() < deadline, "the terminated backends did not go away"
            time.sleep(0.01)
    engine.dispose()
    return len(pids)


def change_after_each_password_check(monkeypatch, database, statement) -> None:
    """Run `statement()` from outside, as another request would, each time a rule's password check returns."""
    real = users.verify_password

    def checked_then_changed(*args):
        result = real(*args)
        database.execute(statement())
        return result

    monkeypatch.setattr(users, "verify_password", checked_then_changed)


def record_argon2_checks(monkeypatch) -> list[str]:
    """The stored hashes rules/passwords.py checks a password against with Argon2 from now on in this test, in order."""
    real, checked = passwords.argon2_matches, []

    def recording(stored_hash, password):
        checked.append(stored_hash)
        return real(stored_hash, password)

    monkeypatch.setattr(passwords, "argon2_matches", recording)
    return checked
