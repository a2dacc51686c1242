"""Logs under gunicorn: one JSON line per request and per security event on stdout, and never a secret in any line.

A security event's record, seen in-process, is app/test_logs.py's.
"""

import base64
import json
import re

import pytest
from deployment import deploy_env, exchange, released_schema, run, web_server
from helpers import PASSWORD, SECRET
from sqlalchemy import text

from tokenservice.storage.extensions import db

NEW_PASSWORD = "a brand new passphrase"
# Small limits, so that the leak test reaches both and logs login_throttled and
# rate_limited: LOGIN_FAILURE_LIMIT per username (in PostgreSQL, shared by the
# workers), TOKEN_RATE_LIMIT per address (memory://, so each worker counts its own).
LOGIN_FAILURES = 5
ATTEMPTS = 20
WORKERS = 2


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    return released_schema(app, database_url, "log_check")


def drive_every_route(port: int) -> tuple[set[str], list[str], dict[str, list[str]]]:
    """Every route, with real credentials and tokens and some wrong ones, then past both limits.

    Returns every secret used, the request ids, and the ids of the requests
    refused by each limit (login_throttled, rate_limited).
    """
    secrets, request_ids, limited = {PASSWORD, NEW_PASSWORD, SECRET}, [], {"login_throttled": [], "rate_limited": []}
    alice = {"username": "alice", "password": PASSWORD}

    def call(method, path, body=None, token=None, headers=None):
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
        status, answer_headers, answer = exchange(port, method, path, body, headers)
        request_ids.append(answer_headers["X-Request-ID"])
        for name in ("access_token", "refresh_token", "token"):
            if name in answer:
                secrets.add(answer[name])
        return status, answer

    assert call("POST", "/users", alice)[0] == 201
    basic = "Basic " + base64.b64encode(f"root:{PASSWORD}".encode()).decode()
    secrets.add(basic)
    root = call("POST", "/token", headers={"Authorization": basic})[1]
    tokens = call("POST", "/token", alice)[1]
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    call("POST", "/token", {"username": "alice", "password": "a wrong password"})
    call("POST", "/token", {"username": "nobody", "password": PASSWORD})
    call("GET", "/me", token=access)
    call("GET", "/protected", token=access)
    call("PATCH", "/me", {"name": "Alice"}, token=access)
    call("GET", "/me", token="not.a.token")
    call("GET", "/me?access_token=" + access)  # a token in the query string is not read, nor logged
    refreshed = call("POST", "/token/refresh", token=refresh)[1]
    call("POST", "/token", {"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]})
    call("POST", "/token/refresh", token=refresh)  # reused after rotation: theft, the session ends
    again = call("POST", "/token", alice)[1]["access_token"]
    call("POST", "/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}, token=again)
    call("POST", "/me/password", {"current_password": "wrong", "new_password": NEW_PASSWORD}, token=again)
    for method, path, body in [
        ("GET", "/users", None),
        ("GET", "/users/2", None),
        ("PATCH", "/users/2", {"role": "admin"}),
        ("PATCH", "/users/2", {"password": PASSWORD}),
        ("POST", "/users", {"username": "carol", "password": PASSWORD, "role": "user"}),
        ("DELETE", "/users/3", None),
    ]:
        call(method, path, body, token=root["access_token"])
    call("POST", "/logout?all=true", token=again)
    call("GET", "/health")
    call("GET", "/nowhere")

    # The limits last, so that no other route meets them. Alice has two counted
    # failures by now: wrong guesses at her password until LOGIN_FAILURE_LIMIT
    # refuses her, then her right password, refused too. With no more than
    # 8 + LOGIN_FAILURES + 2 requests to POST /token and POST /users so far,
    # no worker has reached TOKEN_RATE_LIMIT: each 429 here is the username's.
    statuses = []
    for guess in range(LOGIN_FAILURES + 1):
        wrong = f"guess number {guess} at alice's passphrase"
        secrets.add(wrong)
        status, answer = call("POST", "/token", {"username": "alice", "password": wrong})
        statuses.append(status)
        if status == 429:
            assert answer["error"] == "rate_limited"
            limited["login_throttled"].append(request_ids[-1])
            break
    assert 1 <= statuses.count(401) < LOGIN_FAILURES and statuses[-1] == 429, statuses
    assert call("POST", "/token", alice)[0] == 429
    limited["login_throttled"].append(request_ids[-1])

    # Then sign-ups with a password (refused at once: the username is taken)
    # until TOKEN_RATE_LIMIT refuses this address: out of WORKERS * ATTEMPTS + 1,
    # some worker has counted more than ATTEMPTS, whatever it counted before.
    statuses = []
    for _ in range(WORKERS * ATTEMPTS + 1):
        status, answer = call("POST", "/users", alice)
        statuses.append(status)
        if status == 429:
            assert answer["error"] == "rate_limited"
            limited["rate_limited"].append(request_ids[-1])
            break
    assert statuses == [409] * (len(statuses) - 1) + [429], statuses
    return secrets, request_ids, limited


def test_no_secret_in_any_line_and_one_json_line_per_request(heroku_url, app):
    env = deploy_env(
        heroku_url,
        LOGIN_FAILURE_LIMIT=f"{LOGIN_FAILURES} per hour",
        TOKEN_RATE_LIMIT=f"{ATTEMPTS} per hour",
        REGISTRATION_RATE_LIMIT="1000 per hour",  # TOKEN_RATE_LIMIT is the one that refuses here
        WEB_CONCURRENCY=str(WORKERS),
    )
    assert run(f"flask users create root --role admin --password '{PASSWORD}'", env).returncode == 0
    with web_server(env) as (port, output):
        secrets, request_ids, limited = drive_every_route(port)
    with app.app_context():
        hashes = db.session.execute(text("SELECT password_hash FROM log_check.users")).scalars().all()
    secrets |= set(hashes) | {stored.split("$")[-1] for stored in hashes}
    log = output[0]
    leaked = [secret for secret in secrets if secret in log]
    assert leaked == []
    assert "Bearer " not in log and "Basic " not in log and "$argon2" not in log

    # The app writes each line once, as JSON: not again in Flask's own "[time] INFO in module: message" form.
    flask_format = re.compile(r"\[[^]]+\] (DEBUG|INFO|WARNING|ERROR|CRITICAL) in ")
    assert [raw for raw in log.splitlines() if flask_format.match(raw)] == []
    lines = json_lines(log)
    requests = [line for line in lines if line["event"] == "request"]
    assert sorted(line["request_id"] for line in requests if line["request_id"] in request_ids) == sorted(request_ids)
    assert {"time", "level", "method", "path", "status", "duration_ms", "client", "request_id"} <= set(requests[-1])
    assert [line["user_id"] for line in requests if line["path"] == "/protected"] == [2]
    events = {line["event"] for line in lines} - {"request"}
    assert events >= {
        "user_created",
        "login_failed",
        "refresh_token_reused",
        "sessions_ended",
        "role_changed",
        "user_deleted",
        "login_throttled",
        "rate_limited",
    }

    # Each refusal by a limit: its request's line, and one event line with
    # that request's id and address, ids and counts only (no typed-in username).
    by_id = {line["request_id"]: line for line in requests}
    common = {"time", "level", "event", "request_id", "client"}
    expected = {"login_throttled": common | {"user_id"}, "rate_limited": common | {"limit"}}
    for event, ids in limited.items():
        assert [(by_id[id_]["path"], by_id[id_]["status"]) for id_ in ids] == [
            ("/users" if event == "rate_limited" else "/token", 429)
        ] * len(ids)
        found = [line for line in lines if line["event"] == event]
        assert sorted(line["request_id"] for line in found) == sorted(ids), event
        for line in found:
            assert set(line) == expected[event] and line["level"] == "warning" and line["client"] == "127.0.0.1"
    assert [line["user_id"] for line in lines if line["event"] == "login_throttled"] == [2, 2]
    assert [line["limit"] for line in lines if line["event"] == "rate_limited"] == [f"{ATTEMPTS} per 1 hour"]
    # The secrets those requests carried (passwords in their bodies) were in the search above, which read these lines.
    event_lines = [raw for raw in log.splitlines() if raw.startswith("{") and json.loads(raw)["event"] in limited]
    assert len(event_lines) == 3
    assert [secret for secret in secrets for raw in event_lines if secret in raw] == []


def test_the_request_id_is_taken_or_made_and_echoed(heroku_url):
    with web_server(deploy_env(heroku_url)) as (port, output):
        _, given, _ = exchange(port, "GET", "/health", headers={"X-Request-ID": "trace-42.a"})
        _, made, _ = exchange(port, "GET", "/health", headers={"X-Request-ID": "not ok\u00e9"[:6] + " <script>"})
    assert given["X-Request-ID"] == "trace-42.a"
    assert len(made["X-Request-ID"]) == 32 and made["X-Request-ID"] != "not ok"
    ids = [line["request_id"] for line in json_lines(output[0]) if line["event"] == "request"]
    assert ids[-2:] == ["trace-42.a", made["X-Request-ID"]]


def test_herokus_access_log_switch_adds_no_text_lines(heroku_url):
    """The Python buildpack exports GUNICORN_CMD_ARGS=--access-logfile -, which outranks our config."""
    with web_server(deploy_env(heroku_url, GUNICORN_CMD_ARGS="--access-logfile -")) as (port, output):
        exchange(port, "GET", "/health")
    assert '"GET /health HTTP/1.1" 200' not in output[0]
    assert any(line["event"] == "request" and line["path"] == "/health" for line in json_lines(output[0]))
