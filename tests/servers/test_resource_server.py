"""docs/clients.md's resource server, run in a process of its own against gunicorn: from nothing but the issuer URL
and its client credentials, it finds the keys and the introspection endpoint, verifies a user's token, and sees a
logout at once by introspection, while the signature check goes on accepting the token."""

import json
import re
import subprocess
import sys
import time

from deployment import deploy_env, exchange, free_port, login, released_schema, run, web_server
from helpers import ROOT, WITHIN, bearer

CLIENTS_PAGE = (ROOT / "docs" / "clients.md").read_text()


def documented_resource_server(tmp_path) -> str:
    """The page's resource server, as a file to run."""
    section = CLIENTS_PAGE[CLIENTS_PAGE.index("## A resource server in Python") :]
    path = tmp_path / "resource_server.py"
    path.write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    return str(path)


def test_a_second_service_verifies_by_the_keys_and_sees_a_logout_by_introspection(app, database_url, pairs, tmp_path):
    url = released_schema(app, database_url, "resource_server_check", users=("alice",))
    private, public, _ = pairs["RS256"][0]
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = deploy_env(
        url, PORT=str(port), JWT_ISSUER=issuer, JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=private, JWT_PUBLIC_KEY=public
    )
    created = run("flask clients create 'resource server' --scope introspect", env)
    assert created.returncode == 0, created.stderr
    client_id = re.search(r"client_id:\s+(\S+)", created.stdout)[1]
    secret = re.search(r"client_secret:\s+(\S+)", created.stdout)[1]
    with web_server(env) as (port, _):
        checker = subprocess.Popen(
            [sys.executable, documented_resource_server(tmp_path), issuer, client_id, secret],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:

            def check(token: str) -> dict:
                checker.stdin.write(token + "\n")
                checker.stdin.flush()
                return json.loads(checker.stdout.readline())

            tokens = login(port)
            assert check(tokens["access_token"]) == {"signature_ok": True, "active": True}
            assert exchange(port, "POST", "/logout", headers=bearer(tokens["access_token"]))[0] == 204
            ended = time.monotonic()
            verdict = check(tokens["access_token"])
            # The documented difference: the signature still holds until the token expires; introspection
            # sees the logout at once.
            assert verdict == {"signature_ok": True, "active": False}
            assert time.monotonic() - ended < WITHIN
            assert check("not a token") == {"signature_ok": False, "active": False}
        finally:
            checker.stdin.close()
            checker.wait(timeout=10)
            checker.stdout.close()
