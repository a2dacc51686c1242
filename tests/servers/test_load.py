"""A bounded burst of mixed traffic against the Procfile's web command: no user or session lost, no 5xx but one.

The one 5xx allowed is the hashing queue's 503 (a login or a sign-up beyond
what a worker can hash soon), which a client retries after Retry-After.

16 clients for 15 seconds, each registering a user of its own, then looping
over logging in, reading /me, refreshing and reading again. Run it alone to
see the figures: pytest tests/servers/test_load.py -s
"""

import statistics
import threading
import time
from collections import Counter, defaultdict

import pytest
from deployment import deploy_env, exchange, procfile, run, schema_url, web_server
from helpers import PASSWORD
from sqlalchemy import text

from tokenservice.storage.extensions import db

CLIENTS = 16
SECONDS = 15


@pytest.fixture(scope="module")
def served(app, database_url):
    url = schema_url(app, database_url, "load_check")
    env = deploy_env(url, RATELIMIT_ENABLED="false")  # one address, many clients: a load test, not an attack
    assert run(procfile()["release"], env).returncode == 0
    with web_server(env) as (port, output):
        yield port, output


def test_a_burst_loses_nothing(served, app):
    port, _ = served
    statuses, timings = defaultdict(Counter), defaultdict(list)
    registered, sessions_opened = [], []
    deadline = time.monotonic() + SECONDS

    def timed(kind, method, path, body=None, token=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.monotonic()
        status, answered, answer = exchange(port, method, path, body, headers)
        timings[kind].append(time.monotonic() - started)
        statuses[kind][status] += 1
        if status == 503:  # shed by the hashing queue: come back when it says
            time.sleep(int(answered["Retry-After"]))
        return status, answer

    def client(index):
        credentials = {"username": f"load{index:02d}", "password": PASSWORD}
        status = 503
        while status == 503 and time.monotonic() < deadline:  # shed by the hashing queue: try again
            status = timed("register", "POST", "/users", credentials)[0]
        if status == 201:
            registered.append(credentials["username"])
        while time.monotonic() < deadline:
            status, tokens = timed("login", "POST", "/token", credentials)
            if status != 200:
                continue
            sessions_opened.append(tokens["user_id"])
            timed("read", "GET", "/me", token=tokens["access_token"])
            status, refreshed = timed("refresh", "POST", "/token/refresh", token=tokens["refresh_token"])
            if status == 200:
                timed("read", "GET", "/me", token=refreshed["access_token"])

    threads = [threading.Thread(target=client, args=(index,)) for index in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    for kind in ("register", "login", "refresh", "read"):
        times = sorted(timings[kind])
        p99 = times[int(len(times) * 0.99) - 1] if len(times) >= 100 else times[-1]
        print(
            f"{kind:8} {len(times):6} requests {len(times) / elapsed:7.1f}/s  "
            f"p50 {statistics.median(times) * 1000:6.1f} ms  p99 {p99 * 1000:6.1f} ms  {dict(statuses[kind])}"
        )
    assert set(statuses["read"]) == set(statuses["refresh"]) == {200}
    assert set(statuses["register"]) - {503} == {201}
    assert set(statuses["login"]) - {503} == {200}
    assert len(registered) == CLIENTS
    with app.app_context():
        users = db.session.execute(text("SELECT username FROM load_check.users")).scalars().all()
        sessions = db.session.execute(text("SELECT count(*) FROM load_check.sessions")).scalar()
    assert sorted(users) == sorted(registered)
    assert sessions == len(sessions_opened) > CLIENTS
