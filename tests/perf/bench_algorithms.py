"""GET /protected and POST /token under HS256, RS256 and ES256, side by side in one run.

Three instances of the service (the Procfile's web command, 2 workers each)
on one PostgreSQL, one per algorithm, driven by wrk in alternating rounds;
ratios against HS256 are what to read. RS256 keys are 3072-bit RSA (what
`flask keys generate` makes), ES256 keys P-256. The session cache is off, so
that every request verifies a signature and asks PostgreSQL, as a write does.

    pipenv run python tests/perf/bench_algorithms.py [--seconds 3] [--rounds 5] [--connections 8]
"""

import argparse
import statistics
import subprocess

from bench import (
    PASSWORD,
    ROOT,
    SECRET,
    Server,
    add_users,
    database_url,
    env,
    in_schema,
    log_in,
    measure,
)

from tokenservice.tokens.key_pairs import generate

ALGORITHMS = ("HS256", "RS256", "ES256")


def key_settings(algorithm: str) -> dict:
    if algorithm == "HS256":
        return {"JWT_SECRET_KEY": SECRET}
    private, public, _ = generate(algorithm)
    return {"JWT_ALGORITHM": algorithm, "JWT_PRIVATE_KEY": private.decode(), "JWT_PUBLIC_KEY": public.decode()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    url = in_schema(database_url(), "bench_algorithms")
    base = env(DATABASE_URL=url, WEB_CONCURRENCY="2", RATELIMIT_ENABLED="false", SESSION_CACHE="false")
    subprocess.run(["flask", "db", "upgrade"], cwd=ROOT, env={**base, "JWT_SECRET_KEY": SECRET}, check=True)
    usernames = add_users(url)
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    servers = {}
    try:
        for algorithm in ALGORITHMS:
            servers[algorithm] = Server(algorithm, procfile["web"], ROOT, {**base, **key_settings(algorithm)})
        tokens = {
            name: [t["access_token"] for t in log_in(server, usernames, PASSWORD)] for name, server in servers.items()
        }
        protected = {algorithm: [] for algorithm in ALGORITHMS}
        login = {algorithm: [] for algorithm in ALGORITHMS}
        for algorithm, server in servers.items():  # warm up
            measure(server.url("/protected"), "bearer", tokens[algorithm], 1, args.connections)
        for _ in range(args.rounds):
            for algorithm, server in servers.items():
                run = measure(server.url("/protected"), "bearer", tokens[algorithm], args.seconds, args.connections)
                protected[algorithm].append(run["rate"])
                run = measure(server.url("/token"), "login", [PASSWORD, *usernames], args.seconds, args.connections)
                login[algorithm].append(run["rate"])
    finally:
        for server in servers.values():
            server.stop()

    base_protected, base_login = statistics.median(protected["HS256"]), statistics.median(login["HS256"])
    print(f"{args.rounds} alternating rounds of {args.seconds} s, {args.connections} connections, 2 workers each\n")
    print("| algorithm | GET /protected req/s | vs HS256 | POST /token req/s | vs HS256 |")
    print("|---|---|---|---|---|")
    for algorithm in ALGORITHMS:
        rate, logins = statistics.median(protected[algorithm]), statistics.median(login[algorithm])
        print(f"| {algorithm} | {rate:.0f} | {rate / base_protected:.2f} | {logins:.1f} | {logins / base_login:.2f} |")


if __name__ == "__main__":
    main()
