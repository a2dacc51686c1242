"""Running the service as a Heroku-style host does: Procfile commands in subprocesses."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers import PASSWORD, ROOT, SECRET, variables_read
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tokenservice.config import normalise_database_url
from tokenservice.storage.extensions import db

VENV_BIN = str(Path(sys.executable).parent)


def procfile() -> dict:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def schema_url(app, database_url: str, schema: str) -> str:
    """A postgres:// URL (as Heroku gives) whose tables live in an empty schema of their own."""
    with app.app_context():
        db.session.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
        db.session.commit()
    url = make_url(normalise_database_url(database_url))
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.set(drivername="postgres").render_as_string(hide_password=False)


def released_schema(app, database_url: str, schema: str, *, users: tuple[str, ...] = ()) -> str:
    """schema_url after Procfile's `release:` has run on it, with these users (password PASSWORD) created."""
    url = schema_url(app, database_url, schema)
    assert run(procfile()["release"], deploy_env(url)).returncode == 0
    for username in users:
        assert run(f"flask users create {username} --password '{PASSWORD}'", deploy_env(url)).returncode == 0
    return url


def deploy_env(database_url: str, **changes) -> dict:
    """The environment of a fresh deployment: every setting at its default, then these.

    Each setting the service reads is present but blank (blank means the
    default), so that `flask`, which loads a .env by itself, cannot bring
    one in from a developer's file.
    """
    env = {key: value for key, value in os.environ.items() if key != "TEST_DATABASE_URL"}
    env.update(dict.fromkeys(variables_read(), ""))
    env.update(
        PATH=VENV_BIN + os.pathsep + env.get("PATH", ""),
        DATABASE_URL=database_url,
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


def port_open(port: int, timeout: float = 1) -> bool:
    """Whether a server listens on 127.0.0.1:port: True once it accepts a connection, False while connecting is
    refused (nothing listens yet, or any more: a server shutting down has closed its socket). Any other error, a
    timeout for one, is raised: it says neither."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
    except ConnectionRefusedError:
        return False
    return True


def run(command: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def call(port: int, method: str, path: str, body=None) -> tuple[int, dict]:
    status, _, answer = exchange(port, method, path, body)
    return status, answer


def exchange(
    port: int, method: str, path: str, body=None, headers=None, raw=None, timeout=10
) -> tuple[int, dict, dict]:
    """One JSON request to the served app (`body` as JSON, or `raw` bytes): (status, response headers, JSON body)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=raw if raw is not None else json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or "{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or "{}")


def login(port: int, username: str = "alice", password: str = PASSWORD, headers=None) -> dict:
    """POST /token with JSON credentials to the served app, which must succeed; the new session's tokens."""
    status, _, tokens = exchange(port, "POST", "/token", {"username": username, "password": password}, headers)
    assert status == 200, (status, tokens)
    return tokens


def refusal_of(result: subprocess.CompletedProcess, sentence: str) -> str:
    """The one sentence a process that refused to start printed (once, or once per worker that was loading the app
    when the master stopped), which must contain `sentence`."""
    refusal = [line for line in result.stderr.splitlines() if line.startswith("tokenservice cannot start:")]
    assert refusal and len(set(refusal)) == 1 and sentence in refusal[0], result.stderr
    return refusal[0]


def assert_web_stopped(result: subprocess.CompletedProcess) -> None:
    """Procfile's `web:` stopped because the app refused to load, with no traceback of the app's.

    4, gunicorn's "App failed to load": the master stops at once. When two
    workers fail at the same instant, gunicorn 27's master trips over the
    second while stopping (HaltServer raised in its own stop()) and exits 1
    with that traceback; never one of the app's.
    """
    assert "App failed to load" in result.stderr
    assert result.returncode == 4 or (result.returncode == 1 and "HaltServer" in result.stderr), result.stderr
    assert "tokenservice" not in "".join(line for line in result.stderr.splitlines() if "File " in line)


def start_web(env: dict, **output) -> subprocess.Popen:
    """Procfile's `web:` command in a process group of its own; the process is gunicorn's master."""
    return subprocess.Popen(
        ["sh", "-c", f"exec {procfile()['web']}"], cwd=ROOT, env=env, start_new_session=True, **output
    )


@contextlib.contextmanager
def web_server(env: dict):
    """Procfile's `web:` command, answering /health; yields (port, a list that receives its output at the end).

    Its output is read as it comes, as a host's log collector would: a full
    pipe would block the server's next log line, and with it the worker.
    """
    server = start_web(env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    port, output = int(env["PORT"]), []
    workers = int(env.get("WEB_CONCURRENCY", "2"))
    try:
        # Every worker has loaded the app (a worker told to stop while it
        # loads takes the whole graceful timeout), and the service answers.
        deadline = time.monotonic() + 30
        while sum("Worker ready" in line for line in lines) < workers:
            assert server.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "gunicorn's workers did not get ready within 30 s"
            time.sleep(0.1)
        call(port, "GET", "/health")
        yield port, output
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        reader.join(timeout=10)
        server.stdout.close()
        output.append("".join(lines))
