"""What a second service pays to check a token: a signature check with cached keys, or an introspection call.

One instance of the service (the Procfile's web command, 2 workers, RS256)
and, in this process, docs/clients.md's two checks done as its resource
server does them (PyJWKClient with its cache; one urllib call to
/introspect per check, a new connection each time), one check after
another, in alternating rounds; medians. Then how long a logout takes to
show in each: introspection at the next call; the signature only when the
token expires.

    pipenv run python tests/perf/bench_introspection.py [--checks 300] [--rounds 3]
"""

import argparse
import base64
import json
import statistics
import subprocess
import time
import urllib.parse
import urllib.request

import jwt
from bench import PASSWORD, ROOT, Server, add_users, database_url, env, in_schema, log_in

from tokenservice.tokens.key_pairs import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    private, public, _ = generate("RS256")
    url = in_schema(database_url(), "bench_introspection")
    keys = {"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY": private.decode(), "JWT_PUBLIC_KEY": public.decode()}
    base = env(DATABASE_URL=url, WEB_CONCURRENCY="2", RATELIMIT_ENABLED="false", **keys)
    subprocess.run(["flask", "db", "upgrade"], cwd=ROOT, env=base, check=True)
    usernames = add_users(url)
    created = subprocess.run(
        ["flask", "clients", "create", "bench", "--scope", "introspect"],
        cwd=ROOT,
        env=base,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    client_id = created.split("client_id:")[1].split()[0]
    secret = created.split("client_secret:")[1].split()[0]
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    server = Server("ours", procfile["web"], ROOT, base)
    try:
        token = log_in(server, usernames[:1], PASSWORD)[0]["access_token"]
        jwks = jwt.PyJWKClient(server.url("/.well-known/jwks.json"))

        def by_signature() -> bool:
            key = jwks.get_signing_key_from_jwt(token)
            jwt.decode(token, key.key, algorithms=[key.algorithm_name])
            return True

        def by_introspection() -> bool:
            body = urllib.parse.urlencode({"token": token}).encode()
            request = urllib.request.Request(server.url("/introspect"), data=body, headers={"Authorization": basic})
            with urllib.request.urlopen(request) as answer:
                return json.load(answer)["active"]

        timings = {"signature": [], "introspection": []}
        for _ in range(args.rounds):
            for name, check in (("signature", by_signature), ("introspection", by_introspection)):
                started = time.perf_counter()
                for _ in range(args.checks):
                    assert check()
                timings[name].append((time.perf_counter() - started) / args.checks)
        signature, introspection = (statistics.median(timings[name]) for name in timings)

        logout = urllib.request.Request(
            server.url("/logout"), method="POST", headers={"Authorization": f"Bearer {token}"}
        )
        urllib.request.urlopen(logout).close()
        ended = time.perf_counter()
        while by_introspection():
            pass
        seen = time.perf_counter() - ended
        still_signed = by_signature()
    finally:
        server.stop()

    print(f"{args.rounds} alternating rounds of {args.checks} checks, one after another, medians")
    print(f"signature check (PyJWKClient, keys cached): {signature * 1e6:.0f} us per check")
    print(f"introspection (one POST /introspect each):  {introspection * 1e3:.2f} ms per check")
    print(f"introspection costs {introspection / signature:.0f}x the signature check")
    print(f"a logout: introspection said inactive {seen * 1e3:.1f} ms after it (at its next call);")
    print(f"the signature check still accepted the token: {still_signed} (until it expires, 900 s by default)")


if __name__ == "__main__":
    main()
