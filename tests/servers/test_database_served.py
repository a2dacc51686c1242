"""Pooled connections the server dropped, under gunicorn: two workers under load lose no request sent after it."""

import threading
import time

import pytest
from deployment import deploy_env, exchange, login, procfile, run, schema_url, web_server
from helpers import PASSWORD, terminate_service_connections


@pytest.fixture(scope="module")
def served(app, database_url):
    url = schema_url(app, database_url, "connection_check")
    env = deploy_env(url, TOKEN_RATE_LIMIT="1000 per minute")
    assert run(procfile()["release"], env).returncode == 0
    assert run(f"flask users create alice --password '{PASSWORD}'", env).returncode == 0
    with web_server(env) as (port, _):
        yield port, database_url


def test_under_load_with_two_workers(served):
    """Every request sent after the connections were terminated succeeds; one caught in flight is at worst a 503.

    (A request whose connection died after its answer was made used to get
    gunicorn's HTML 500: the session's rollback failed in the teardown.)
    """
    port, database_url = served
    token = login(port)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    killed_at, every, after, stop = [], [], [], threading.Event()

    def read():
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status = exchange(port, "GET", "/me", headers=headers)[0]
            except Exception as exc:  # a connection error, or an answer that is not JSON
                status = type(exc).__name__
            every.append(status)
            if killed_at and sent > killed_at[0]:
                after.append(status)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(0.5)  # load, with every worker's pool in use
        assert terminate_service_connections(database_url) >= 2
        killed_at.append(time.monotonic())
        time.sleep(1.5)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert len(after) >= 20
    assert set(after) == {200}
    assert set(every) <= {200, 503}
