"""Procfile's release and web commands, run as a Heroku-style host runs them.

They run in subprocesses from the repository root, against a schema of
their own given by a postgres:// DATABASE_URL, with real gunicorn.
"""

import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from deployment import call, deploy_env, procfile, run, schema_url, web_server
from helpers import PASSWORD, ROOT
from sqlalchemy import text

from tokenservice.extensions import db


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
    assert "Booting worker" in output[0]
    assert f"Listening at: http://0.0.0.0:{port}" in output[0]


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
    server = subprocess.Popen(
        ["sh", "-c", f"exec {procfile()['web']}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: not refused(port))
        # A login waits for the user's row, which this transaction holds locked: a slow request in flight.
        with app.app_context(), db.engine.connect() as holder:
            holder.execute(text("SELECT 1 FROM deploy_check.users WHERE username = 'slowpoke' FOR UPDATE"))
            with ThreadPoolExecutor(max_workers=1) as pool:
                login = pool.submit(call, port, "POST", "/token", {"username": "slowpoke", "password": PASSWORD})
                wait_for(lambda: lock_waiters(app))
                os.kill(server.pid, signal.SIGTERM)
                wait_for(lambda: refused(port))  # no new connections once shutting down
                holder.rollback()  # the slow request may now finish
                status, tokens = login.result(timeout=20)
        assert status == 200 and tokens["token_type"] == "Bearer"
        assert server.wait(timeout=25) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def wait_for(condition, timeout=15):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def lock_waiters(app) -> int:
    with app.app_context():
        waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return db.session.execute(waiting).scalar()


def refused(port) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False
