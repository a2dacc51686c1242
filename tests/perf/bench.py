"""`pipenv run bench`: tokenservice against the classic snippet, side by side in one run.

Three servers on one PostgreSQL, 2 gunicorn workers each:

- tokenservice, started with the Procfile's own `web:` command (gevent);
- the classic snippet (baseline_app.py) with gunicorn's default sync
  workers, as it would be deployed;
- the same snippet with our worker class (gevent, psycopg2 made
  cooperative), so that the worker class is not what is compared.

The load comes from a separate process, wrk (Debian's package: `sudo apt-get
install wrk`), 8 connections, over 200 users each with a session of their
own, so that no cache looks better than real traffic would make it. Rounds
alternate between the servers so that the machine's noise falls on all of
them; the ratios are what to read. Every figure is a median over rounds.

    pipenv run bench [--seconds 3] [--rounds 3] [--connections 8]

The database is BENCH_DATABASE_URL, else TEST_DATABASE_URL (its schemas
bench_ours and bench_baseline are replaced), else an embedded PostgreSQL of
the run's own. Rate limits are off (RATELIMIT_ENABLED=false).
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PERF_DIR = Path(__file__).resolve().parent
VENV_BIN = str(Path(sys.executable).parent)
SECRET = "benchmark-only-secret-that-is-long-enough-for-hs256"
PASSWORD = "correct horse battery staple"
USERS = 200
FLOOD_CONNECTIONS = 16

sys.path[:0] = [str(ROOT / "tests")]
from helpers import variables_read  # noqa: E402

from tokenservice.config import normalise_database_url  # noqa: E402
from tokenservice.rules.passwords import hash_password  # noqa: E402


def database_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    from tokenservice.storage import embedded_db

    return embedded_db.start(Path(tempfile.mkdtemp()) / "pgdata", delete_on_exit=True)


def in_schema(url: str, schema: str) -> str:
    """A URL whose tables live in `schema`, emptied first."""
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
    """This environment with every setting of the service blank (its default), plus `values`.

    `pipenv run` loads a developer's .env, and `flask` reads it by itself: a
    blank value keeps it out, as in the tests (deployment.py).
    """
    # WEB_CONCURRENCY is left out, not blank: gunicorn itself stops on a blank one.
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEST_") and k != "WEB_CONCURRENCY"}
    blanks = dict.fromkeys(variables_read() - {"WEB_CONCURRENCY"}, "")
    return {**base, **blanks, "PATH": VENV_BIN + os.pathsep + base["PATH"], **values}


class Server:
    """A gunicorn started in its own process group; stopped with SIGTERM."""

    def __init__(self, name: str, command: str, cwd: Path, environ: dict):
        self.name, self.port = name, free_port()
        self.process = subprocess.Popen(
            ["sh", "-c", "exec " + command.format(port=self.port)],
            cwd=cwd,
            env={**environ, "PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit(f"{name} did not listen on {self.port}") from None
                time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url(path), json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def worker_memory_mb(self) -> list[tuple[float, float]]:
        """Each worker's resident memory and its proportional share (PSS: shared pages divided among sharers)."""
        workers = psutil.Process(self.process.pid).children(recursive=True)
        return [(info.rss / 2**20, info.pss / 2**20) for info in (worker.memory_full_info() for worker in workers)]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def wrk(url: str, mode: str, lines: list[str], seconds: int, connections: int) -> subprocess.Popen:
    """Start one wrk run in its own process; `results` reads it."""
    file = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)  # noqa: SIM115 (removed by results)
    file.write("\n".join(lines) + "\n")
    file.close()
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(PERF_DIR / "load.lua")]
    run = subprocess.Popen([*command, url, "--", mode, file.name], stdout=subprocess.PIPE, text=True)
    run.lines_file = file.name
    return run


def results(run: subprocess.Popen, *, shed_ok: bool = False) -> dict:
    """requests/s, p50 and p99 in ms of a wrk run; every answer must have been a 2xx (or, if `shed_ok`, a 503)."""
    output, _ = run.communicate(timeout=120)
    os.unlink(run.lines_file)
    try:
        figures = json.loads(output.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"{run.args} printed no results:\n{output}") from None
    failed = figures["failed"] + (0 if shed_ok else figures["shed"])
    if run.returncode or failed:
        raise SystemExit(f"{run.args}: {failed} of {figures['requests']} requests failed")
    figures["rate"] = figures["requests"] / figures["seconds"]
    return figures


def measure(url: str, mode: str, lines: list[str], seconds: int, connections: int) -> dict:
    return results(wrk(url, mode, lines, seconds, connections))


def add_users(url: str) -> list[str]:
    """USERS users with the password PASSWORD (one hash, made once); their names."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (username, password_hash) SELECT 'bench' || i, :hash FROM generate_series(0, :n) i"
            ),
            {"hash": hash_password(PASSWORD), "n": USERS - 1},
        )
    engine.dispose()
    return [f"bench{i}" for i in range(USERS)]


def start_servers(url: str) -> dict[str, Server]:
    gunicorn = str(Path(VENV_BIN) / "gunicorn")
    ours_url = in_schema(url, "bench_ours")
    ours_env = env(DATABASE_URL=ours_url, JWT_SECRET_KEY=SECRET, RATELIMIT_ENABLED="false", WEB_CONCURRENCY="2")
    subprocess.run(["flask", "db", "upgrade"], cwd=ROOT, env=ours_env, check=True, capture_output=True)
    add_users(ours_url)

    baseline_env = env(BASELINE_DATABASE_URL=in_schema(url, "bench_baseline"))
    # Importing baseline_app once creates its table and user, before workers race to.
    script = (
        "import baseline_app as b\nfrom werkzeug.security import generate_password_hash\n"
        "with b.app.app_context():\n"
        f"    b.db.session.add_all(b.User(username=f'bench{{i}}', password=generate_password_hash({PASSWORD!r}))"
        f" for i in range({USERS}))\n    b.db.session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=PERF_DIR, env=baseline_env, check=True)

    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    baseline = f"{gunicorn} -w 2 -b 127.0.0.1:{{port}} --no-control-socket baseline_app:app"
    servers = {}
    try:
        servers["ours"] = Server("tokenservice", procfile["web"], ROOT, ours_env)
        servers["sync"] = Server("snippet, sync", baseline, PERF_DIR, baseline_env)
        gevent = f"{baseline} --config {PERF_DIR / 'baseline_gevent.conf.py'}"
        servers["gevent"] = Server("snippet, gevent", gevent, PERF_DIR, baseline_env)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


def log_in(server: Server, usernames: list[str], password: str) -> list[dict]:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda name: server.post("/token", {"username": name, "password": password}), usernames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("The benchmark drives the servers with wrk: sudo apt-get install wrk")

    servers = start_servers(database_url())
    ours, sync, gevent = servers["ours"], servers["sync"], servers["gevent"]
    usernames = [f"bench{i}" for i in range(USERS)]
    figures: dict[tuple[str, str], list[dict]] = {}
    flooded = []
    try:
        access = [tokens["access_token"] for tokens in log_in(ours, usernames, PASSWORD)]
        snippet = [tokens["token"] for tokens in log_in(sync, usernames, PASSWORD)]  # valid on both snippets
        runs = {
            ("GET /protected", "ours"): (ours, "/protected", "bearer", access),
            ("GET /protected", "sync"): (sync, "/protected", "bearer", snippet),
            ("GET /protected", "gevent"): (gevent, "/protected", "bearer", snippet),
            ("GET /identity", "sync"): (sync, "/identity", "bearer", snippet),
            ("GET /identity", "gevent"): (gevent, "/identity", "bearer", snippet),
            ("GET /me", "ours"): (ours, "/me", "bearer", access),
            ("POST /token", "ours"): (ours, "/token", "login", [PASSWORD, *usernames]),
            ("POST /token", "sync"): (sync, "/token", "login", [PASSWORD, *usernames]),
            ("POST /token", "gevent"): (gevent, "/token", "login", [PASSWORD, *usernames]),
        }
        for server, path, mode, lines in runs.values():  # warm every worker's connections
            measure(server.url(path), mode, lines, 1, args.connections)
        for _ in range(args.rounds):
            for key, (server, path, mode, lines) in runs.items():
                run = measure(server.url(path), mode, lines, args.seconds, args.connections)
                figures.setdefault(key, []).append(run)
            # Sessions of their own for each refresh run: a refresh token is good once.
            refresh = [tokens["refresh_token"] for tokens in log_in(ours, usernames, PASSWORD)]
            run = measure(ours.url("/token/refresh"), "refresh", refresh, args.seconds, args.connections)
            figures.setdefault(("POST /token/refresh", "ours"), []).append(run)
            # /protected while logins are flooded from many more clients.
            flood = wrk(ours.url("/token"), "login", [PASSWORD, *usernames], args.seconds + 2, FLOOD_CONNECTIONS)
            time.sleep(1)
            flooded.append(measure(ours.url("/protected"), "bearer", access, args.seconds, args.connections))
            # The flood only keeps the hashing threads busy: what they cannot hash soon is a 503 by design.
            results(flood, shed_ok=True)
        # wrk has stopped, but logins it queued may still be hashing, each
        # with its 19 MiB: memory after load is read once they are done.
        time.sleep(2)
        memory = {name: server.worker_memory_mb() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    report(args, figures, flooded, memory)


def report(args, figures: dict, flooded: list[dict], memory: dict) -> None:
    def median(key, field="rate"):
        return statistics.median(run[field] for run in figures[key])

    def cell(key):
        if key not in figures:
            return "-"
        return f"{median(key):.0f} ({median(key, 'p50_ms'):.1f} / {median(key, 'p99_ms'):.1f})"

    print(f"{args.rounds} alternating rounds of {args.seconds:g} s, {args.connections} connections, {USERS} users")
    print("req/s (p50 / p99 ms), medians\n")
    print("| route | tokenservice | snippet, sync | ours vs sync | snippet, gevent | ours vs gevent |")
    print("|---|---|---|---|---|---|")
    for route in ("GET /protected", "POST /token", "GET /me", "POST /token/refresh"):
        row = [cell((route, name)) for name in ("ours", "sync", "gevent")]
        ratios = [
            f"{median((route, 'ours')) / median((route, name)):.2f}" if (route, name) in figures else "-"
            for name in ("sync", "gevent")
        ]
        print(f"| `{route}` | {row[0]} | {row[1]} | {ratios[0]} | {row[2]} | {ratios[1]} |")
    identity = [median(("GET /identity", name)) for name in ("sync", "gevent")]
    ours_protected = median(("GET /protected", "ours"))
    print(
        f"| snippet's `GET /identity` (signature only) | - | {cell(('GET /identity', 'sync'))} "
        f"| {ours_protected / identity[0]:.2f} | {cell(('GET /identity', 'gevent'))} "
        f"| {ours_protected / identity[1]:.2f} |"
    )
    idle = median(("GET /protected", "ours"), "p99_ms")
    busy = statistics.median(run["p99_ms"] for run in flooded)
    print(
        f"\np99 of tokenservice's GET /protected: {idle:.1f} ms idle, {busy:.1f} ms while {FLOOD_CONNECTIONS} "
        f"connections flood POST /token: {busy / idle:.1f}x"
    )
    for name, sizes in memory.items():
        each = ", ".join(f"{rss:.0f} MB (PSS {pss:.0f})" for rss, pss in sizes)
        print(f"resident memory per worker after load, {name}: {each}")

    best_snippet = max(median(("GET /protected", name)) for name in ("sync", "gevent"))
    best_login = max(median(("POST /token", name)) for name in ("sync", "gevent"))
    targets = [
        ("GET /protected >= 1.0x the snippet's /protected", ours_protected / best_snippet >= 1.0),
        ("POST /token >= 3x the snippet's login", median(("POST /token", "ours")) / best_login >= 3),
        ("p99 of /protected under a login flood <= 2x idle", busy / idle <= 2),
        # Side by side under the same worker class, cryptography loaded in both (PyJWT imports it).
        (
            "resident memory per worker <= 1.2x the snippet's gevent worker",
            max(rss for rss, _ in memory["ours"]) <= 1.2 * max(rss for rss, _ in memory["gevent"]),
        ),
        ("moonshot: GET /protected >= 0.80x the snippet's /identity", ours_protected / max(identity) >= 0.8),
    ]
    print("\ntargets (against the faster of the snippet's two worker classes):")
    for target, met in targets:
        print(f"  {'met    ' if met else 'NOT MET'}  {target}")


if __name__ == "__main__":
    main()
