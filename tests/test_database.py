"""Pooled connections the server dropped (pg_terminate_backend, a failover, a PgBouncer restart) cost no request."""

import threading
import time

import pytest
from deployment import deploy_env, exchange, procfile, run, schema_url, web_server
from helpers import PASSWORD
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tokenservice.config import normalise_database_url
from tokenservice.extensions import db

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


def test_the_next_requests_after_the_kill_all_succeed(client, alice, database_url):
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert terminate_service_connections(database_url) >= 1
    assert [client.get("/me", headers=alice.headers).status_code for _ in range(10)] == [200] * 10


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
    token = exchange(port, "POST", "/token", {"username": "alice", "password": PASSWORD})[2]["access_token"]
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


def test_a_connection_dropped_after_the_answer_was_made_leaves_the_answer(make_app, alice, database_url):
    app = make_app()

    @app.after_request
    def drop_the_connection(response):  # between the answer and the session's end, as a failover might
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        terminate_service_connections(database_url, [pid])
        return response

    response = app.test_client().get("/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json["username"] == "alice"


def test_sql_errors_do_not_show_their_parameters(app):
    with app.app_context():
        with pytest.raises(DBAPIError) as raised:
            db.session.execute(text("SELECT 1 / 0 WHERE :secret <> ''"), {"secret": "a-password-hash"})
        db.session.rollback()
    assert "division by zero" in str(raised.value)
    assert "a-password-hash" not in str(raised.value)


def test_each_worker_opens_at_most_8_connections_and_waits_at_most_10_s(app):
    with app.app_context():
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (5, 1, 10)  # and 2 for the session cache
