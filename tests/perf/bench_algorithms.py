"""GET /protected and POST /token under HS256, RS256 and ES256, side by side in one run.

Three instances of the service (the Procfile's gunicorn, 2 workers each) on
one PostgreSQL, one per algorithm, driven in alternating rounds; ratios
against HS256 are what to read. RS256 keys are 3072-bit RSA (what `flask keys
generate` makes), ES256 keys P-256.

    pipenv run python tests/perf/bench_algorithms.py [--seconds 3] [--rounds 5] [--clients 4]
"""

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench_protected import (
    PASSWORD,
    ROOT,
    SECRET,
    VENV_BIN,
    database_url,
    env,
    free_port,
    in_schema,
    load,
    post_json,
    start,
    stop,
)

sys.path.insert(0, str(ROOT / "src"))
from tokenservice.keys import generate  # noqa: E402

ALGORITHMS = ("HS256", "RS256", "ES256")


def key_settings(algorithm: str) -> dict:
    if algorithm == "HS256":
        return {"JWT_SECRET_KEY": SECRET}
    private, public, _ = generate(algorithm)
    return {"JWT_ALGORITHM": algorithm, "JWT_PRIVATE_KEY": private.decode(), "JWT_PUBLIC_KEY": public.decode()}


def logins(port: int, seconds: float, clients: int) -> float:
    """POST /token per second, from `clients` threads."""
    deadline, counts = time.monotonic() + seconds, [0] * clients

    def client(index):
        while time.monotonic() < deadline:
            post_json(port, "/token", {"username": "bench", "password": PASSWORD})
            counts[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    url = in_schema(database_url(), "bench_algorithms")
    gunicorn = str(Path(VENV_BIN) / "gunicorn")
    servers, tokens = {}, {}
    base = {"DATABASE_URL": url, "WEB_CONCURRENCY": "2", "RATELIMIT_ENABLED": "false"}
    setup = env(**base, JWT_SECRET_KEY=SECRET)
    for command in (["flask", "db", "upgrade"], ["flask", "users", "create", "bench", "--password", PASSWORD]):
        subprocess.run(command, cwd=ROOT, env=setup, check=True, capture_output=True)
    try:
        for algorithm in ALGORITHMS:
            port = free_port()
            environ = env(**base, **key_settings(algorithm), PORT=str(port))
            command = [gunicorn, "--config", "src/gunicorn.conf.py", "wsgi:app"]
            servers[algorithm] = (port, start(command, ROOT, environ, port))
            tokens[algorithm] = post_json(port, "/token", {"username": "bench", "password": PASSWORD})["access_token"]
        for algorithm, (port, server) in servers.items():  # warm up
            load(port, "/protected", tokens[algorithm], 1, args.clients, server)
        protected = {algorithm: [] for algorithm in ALGORITHMS}
        login = {algorithm: [] for algorithm in ALGORITHMS}
        for _ in range(args.rounds):
            for algorithm, (port, server) in servers.items():
                reads = load(port, "/protected", tokens[algorithm], args.seconds, args.clients, server)
                protected[algorithm].append(reads)
                login[algorithm].append(logins(port, args.seconds, args.clients))
    finally:
        for _, server in servers.values():
            stop(server)

    def median_rate(results):
        return statistics.median(result[0] if isinstance(result, tuple) else result for result in results)

    base_protected, base_login = median_rate(protected["HS256"]), median_rate(login["HS256"])
    print(f"{args.rounds} alternating rounds of {args.seconds:g} s, {args.clients} clients, 2 gunicorn workers each\n")
    print("| algorithm | GET /protected req/s | vs HS256 | worker CPU ms/request | POST /token req/s | vs HS256 |")
    print("|---|---|---|---|---|---|")
    for algorithm in ALGORITHMS:
        rate, cpu = median_rate(protected[algorithm]), statistics.median(c for _, c in protected[algorithm])
        logins_rate = median_rate(login[algorithm])
        print(
            f"| {algorithm} | {rate:.0f} | {rate / base_protected:.2f} | {cpu:.2f} "
            f"| {logins_rate:.1f} | {logins_rate / base_login:.2f} |"
        )


if __name__ == "__main__":
    main()
