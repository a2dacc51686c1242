"""Slow clients against the Procfile's web command: /health keeps answering within 2 s, and all is well after."""

import socket
import threading
import time

import pytest
from deployment import deploy_env, exchange, login, procfile, run, schema_url, web_server
from helpers import PASSWORD
from slow_clients import BODY_HEADERS, SlowClients, probe

CLIENTS = 100
HOLD_SECONDS = 5


@pytest.fixture(scope="module")
def served(app, database_url):
    url = schema_url(app, database_url, "slow_client_check")
    env = deploy_env(url, TOKEN_RATE_LIMIT="1000 per minute")  # this is about connections, not attempts
    assert run(procfile()["release"], env).returncode == 0
    assert run(f"flask users create alice --password '{PASSWORD}'", env).returncode == 0
    with web_server(env) as (port, output):
        yield port, output


@pytest.mark.parametrize("mode", ["headers", "body", "authbody", "silent"])
def test_a_hundred_slow_clients_do_not_stop_health(served, mode):
    port, _ = served
    tokens = login(port)
    slow = SlowClients("127.0.0.1", port, mode, CLIENTS, tokens["access_token"])
    slow.start()
    stop = threading.Event()

    def trickle():
        while not stop.wait(1.0):
            slow.tick()

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        during = health_during(port)
    finally:
        stop.set()
        trickler.join()
        slow.close()
    assert slow.opened >= CLIENTS
    assert [detail for ok, _, detail in during if not ok] == []  # each /health answered 200 within 2 s
    assert len(during) >= 10
    after = [probe("127.0.0.1", port, deadline=2.0) for _ in range(5)]
    assert all(ok for ok, _, _ in after), after
    assert exchange(port, "GET", "/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})[0] == 200


def test_bodies_that_are_costly_to_scan_do_not_stop_health(served):
    """A JSON body of 32,000 escaped quotes in a string that never closes, sent over and over by 4 clients."""
    port, _ = served
    body = '"' + '\\"' * 32_000
    stop = threading.Event()
    answers = []

    def attacker():
        while not stop.is_set():
            status, _, _ = exchange(port, "POST", "/token", raw=body.encode())
            answers.append(status)

    attackers = [threading.Thread(target=attacker) for _ in range(4)]
    for thread in attackers:
        thread.start()
    try:
        during = health_during(port)
    finally:
        stop.set()
        for thread in attackers:
            thread.join()
    assert [detail for ok, _, detail in during if not ok] == []
    # 400 invalid_request, until the per-address limit (1,000 a minute here) answers 429 before any scan.
    assert answers.count(400) >= 20 and set(answers) <= {400, 429}


def health_during(port: int) -> list:
    """Probe /health every 0.25 s for HOLD_SECONDS: (ok, seconds, detail) of each probe."""
    during = []
    started = time.monotonic()
    while time.monotonic() - started < HOLD_SECONDS:
        during.append(probe("127.0.0.1", port, deadline=2.0))
        time.sleep(0.25)
    return during


CHUNKED_HEADERS = (
    b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.parametrize(
    ("head", "trickle"), [(BODY_HEADERS, b"a"), (CHUNKED_HEADERS, b"1\r\na\r\n")], ids=["declared", "chunked"]
)
def test_a_body_trickled_slowly_is_cut_off_after_ten_seconds(served, head, trickle):
    """Content-Length: 1000 (or chunks, no end), then a byte a second: a 408, and the connection closed, 10 s on."""
    port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        started = time.monotonic()
        sock.setblocking(False)
        # Bytes half a second off the deadline's beat: one landing as the server closes would be unread there, and
        # Linux then resets the connection, which can discard the 408 before this end reads it.
        time.sleep(0.5)
        answer = b""
        while time.monotonic() - started < 20:
            try:
                chunk = sock.recv(4096)
            except BlockingIOError:
                try:
                    sock.send(trickle)
                except OSError:
                    pass  # the server stopped reading: its answer is on the way
                time.sleep(1)
                continue
            if not chunk:
                break  # the server closed the connection
            answer += chunk
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b'"error":"request_timeout"' in answer
    assert 9 <= took < 14, took  # the deadline (10 s), not the trickle's end
