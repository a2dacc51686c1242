"""GET /protected side by side: tokenservice against the baseline snippet (baseline_app.py), in one run.

Both apps run under real gunicorn (2 sync workers each) on loopback against
the same PostgreSQL, in schemas of their own. Rounds alternate between them
so that the machine's noise falls on both; the figure that matters is the
ratio. Two figures per route: requests per second, and the CPU time the
gunicorn workers spend per request (steadier: it does not depend on the load
generator, which shares the machine's two cores). Bounded: a few seconds per
round, a fixed number of rounds.

    pipenv run python tests/perf/bench_protected.py [--seconds 3] [--rounds 7] [--clients 4]

The database is BENCH_DATABASE_URL, else TEST_DATABASE_URL, else an
embedded PostgreSQL of the run's own.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PERF_DIR = Path(__file__).resolve().parent
VENV_BIN = str(Path(sys.executable).parent)
SECRET = "benchmark-only-secret-that-is-long-enough-for-hs256"
PASSWORD = "correct horse battery staple"

sys.path.insert(0, str(ROOT / "src"))
from tokenservice.config import normalise_database_url  # noqa: E402


def database_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    from tokenservice import embedded_db

    return embedded_db.start(Path(tempfile.mkdtemp()) / "pgdata", delete_on_exit=True)


def in_schema(url: str, schema: str) -> str:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
    engine.dispose()
    with_path = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**values) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "JWT_", "TEST_", "DATABASE_"))}
    return {**base, "PATH": VENV_BIN + os.pathsep + base.get("PATH", ""), **values}


def start(command: list[str], cwd: Path, environ: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        command, cwd=cwd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise SystemExit(f"{command} did not listen on {port}")


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def post_json(port: int, path: str, body: dict) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = json.loads(response.read())
    assert response.status == 200, data
    return data


def worker_cpu(server: subprocess.Popen) -> float:
    workers = psutil.Process(server.pid).children(recursive=True)
    return sum(sum(worker.cpu_times()[:2]) for worker in workers)


def load(port: int, path: str, token: str, seconds: float, clients: int, server: subprocess.Popen) -> tuple:
    """(requests/s, worker CPU ms per request) for `clients` threads over `seconds`; all must be 200s."""
    cpu_before = worker_cpu(server)
    deadline = time.monotonic() + seconds
    counts, failures = [0] * clients, []

    def client(index: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.connect()
            # gunicorn's sync workers close every connection; closing with a
            # reset leaves no TIME_WAIT, so a run cannot use up loopback ports.
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                failures.append(response.status)
                return
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path} on {port} answered {failures[0]}")
    served = sum(counts)
    return served / seconds, 1000 * (worker_cpu(server) - cpu_before) / served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    url = database_url()
    baseline_port, our_port = free_port(), free_port()
    baseline_env = env(BASELINE_DATABASE_URL=in_schema(url, "bench_baseline"))
    ours_url = in_schema(url, "bench_ours")
    ours_env = env(DATABASE_URL=ours_url, JWT_SECRET_KEY=SECRET, PORT=str(our_port), WEB_CONCURRENCY="2")
    for command in (["flask", "db", "upgrade"], ["flask", "users", "create", "bench", "--password", PASSWORD]):
        subprocess.run(command, cwd=ROOT, env=ours_env, check=True, capture_output=True)

    # Importing baseline_app once creates its user, before two workers race to.
    subprocess.run([sys.executable, "-c", "import baseline_app"], cwd=PERF_DIR, env=baseline_env, check=True)
    gunicorn = str(Path(VENV_BIN) / "gunicorn")
    bind = f"127.0.0.1:{baseline_port}"
    baseline_command = [gunicorn, "-w", "2", "-b", bind, "--no-control-socket", "baseline_app:app"]
    baseline = start(baseline_command, PERF_DIR, baseline_env, baseline_port)
    ours = start([gunicorn, "--config", "src/gunicorn.conf.py", "wsgi:app"], ROOT, ours_env, our_port)
    try:
        baseline_token = post_json(baseline_port, "/token", {"username": "alice", "password": "alice123"})["token"]
        our_token = post_json(our_port, "/token", {"username": "bench", "password": PASSWORD})["access_token"]
        targets = {
            "baseline /protected (1 SELECT by primary key)": (baseline_port, "/protected", baseline_token, baseline),
            "tokenservice /protected (session + user check)": (our_port, "/protected", our_token, ours),
            "baseline /identity (signature and expiry only)": (baseline_port, "/identity", baseline_token, baseline),
        }
        for target in targets.values():  # warm up every worker's connections
            load(*target[:3], 1, args.clients, target[3])
        results = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (port, path, token, server) in targets.items():
                results[name].append(load(port, path, token, args.seconds, args.clients, server))
    finally:
        stop(baseline)
        stop(ours)

    def medians(name):
        rates, cpu = zip(*results[name], strict=True)
        return statistics.median(rates), statistics.median(cpu)

    base_rate, base_cpu = medians("baseline /protected (1 SELECT by primary key)")
    print(f"{args.rounds} alternating rounds of {args.seconds:g} s, {args.clients} clients, 2 gunicorn workers each\n")
    print("| route | requests/s (median) | vs baseline | worker CPU ms/request (median) | vs baseline |")
    print("|---|---|---|---|---|")
    for name in results:
        rate, cpu = medians(name)
        print(f"| {name} | {rate:.0f} | {rate / base_rate:.2f} | {cpu:.2f} | {cpu / base_cpu:.2f} |")


if __name__ == "__main__":
    main()
