"""Logs: one JSON line per request and per security event on stdout, and never a secret in any line."""

import base64
import json

import pytest
from deployment import deploy_env, exchange, procfile, run, schema_url, web_server
from helpers import PASSWORD, SECRET
from sqlalchemy import text

from tokenservice.extensions import db

NEW_PASSWORD = "a brand new passphrase"


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    url = schema_url(app, database_url, "log_check")
    assert run(procfile()["release"], deploy_env(url)).returncode == 0
    return url


def drive_every_route(port: int) -> tuple[set[str], list[str]]:
    """Every route, with real credentials and tokens and some wrong ones: (every secret used, the request ids)."""
    secrets, request_ids = {PASSWORD, NEW_PASSWORD, SECRET}, []
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
    return secrets, request_ids


def test_no_secret_in_any_line_and_one_json_line_per_request(heroku_url, app):
    env = deploy_env(heroku_url, LOGIN_FAILURE_LIMIT="100 per minute")
    assert run(f"flask users create root --role admin --password '{PASSWORD}'", env).returncode == 0
    with web_server(env) as (port, output):
        secrets, request_ids = drive_every_route(port)
    with app.app_context():
        hashes = db.session.execute(text("SELECT password_hash FROM log_check.users")).scalars().all()
    secrets |= set(hashes) | {stored.split("$")[-1] for stored in hashes}
    log = output[0]
    leaked = [secret for secret in secrets if secret in log]
    assert leaked == []
    assert "Bearer " not in log and "Basic " not in log and "$argon2" not in log

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
    }


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


def test_security_events_carry_the_request(client, auth, app_log):
    auth.add_user("alice")
    client.post("/token", json={"username": "alice", "password": "wrong"}, headers={"X-Request-ID": "r-1"})
    (failed,) = [record for record in app_log.records if record.getMessage() == "login_failed"]
    assert failed.levelname == "WARNING"
    assert failed.fields["user_id"] == 1 and failed.fields["reason"] == "wrong_password"
