"""Procfile's release and web commands, run as a Heroku-style host runs them.

They run in subprocesses from the repository root, against a schema of
their own given by a postgres:// DATABASE_URL, with real gunicorn.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import PASSWORD, ROOT, SECRET
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tokenservice.config import normalise_database_url
from tokenservice.extensions import db

SCHEMA = "deploy_check"
VENV_BIN = str(Path(sys.executable).parent)


def procfile() -> dict:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    """A postgres:// URL (as Heroku gives) whose tables live in a schema of their own."""
    with app.app_context():
        db.session.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"))
        db.session.commit()
    url = make_url(normalise_database_url(database_url))
    url = url.update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    return url.set(drivername="postgres").render_as_string(hide_password=False)


def deploy_env(heroku_url, **changes):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("APP_", "JWT_", "TEST_"))}
    env.update(
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
        DATABASE_URL=heroku_url,
        JWT_SECRET_KEY=SECRET,
        PORT=str(free_port()),
        WEB_CONCURRENCY="2",
    )
    env.update(changes)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command, env, timeout=120):
    return subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def call(port, method, path, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_procfile_has_release_and_web():
    commands = procfile()
    assert commands["release"] == "flask db upgrade"
    assert "gunicorn" in commands["web"] and "src/gunicorn.conf.py" in commands["web"]


def test_release_twice_then_web_serves_the_api(heroku_url):
    env = deploy_env(heroku_url)
    for attempt in (1, 2):
        result = run(procfile()["release"], env)
        assert result.returncode == 0, f"release #{attempt} failed:\n{result.stderr}"

    server = subprocess.Popen(
        ["sh", "-c", f"exec {procfile()['web']}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    port = int(env["PORT"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = call(port, "GET", "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "gunicorn did not answer /health within 30 s"
                time.sleep(0.2)
        assert (status, body) == (200, {"status": "ok", "database": "ok"})
        credentials = {"username": "heroku", "password": PASSWORD}
        assert call(port, "POST", "/users", credentials)[0] == 201
        status, tokens = call(port, "POST", "/token", credentials)
        assert status == 200 and tokens["token_type"] == "Bearer"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert "Booting worker" in output
    assert f"Listening at: http://0.0.0.0:{port}" in output


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
