"""The shell examples of the README and docs/, pasted into bash against the service under gunicorn."""

import re

import pytest
from deployment import deploy_env, procfile, run, schema_url, web_server
from helpers import ROOT

README = (ROOT / "README.md").read_text()
API_PAGE = (ROOT / "docs" / "api.md").read_text()
ROLES_PAGE = (ROOT / "docs" / "roles.md").read_text()


def shell_block(page: str, after_heading: str) -> str:
    """The first ```sh block after a heading (or a line) of a page."""
    section = page[page.index(after_heading) :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def served(app, database_url):
    env = deploy_env(schema_url(app, database_url, "readme_check"))
    assert run(procfile()["release"], env).returncode == 0
    with web_server(env) as (port, _):
        yield env, f"http://127.0.0.1:{port}"


def paste(block: str, api: str, env: dict):
    """Run a block as pasted into bash, its API variable pointing at the test server."""
    script = re.sub(r"^API=\S+$", f"API={api}", block, flags=re.M)
    return run(f"set -u\nAPI={api}\n{script}", env, timeout=120)


def test_the_curl_walkthrough(served):
    env, api = served
    # The README's walkthrough, then the error examples of docs/api.md in the same shell, as that page says.
    walkthrough = shell_block(README, "## Try it with curl") + shell_block(API_PAGE, "### Each error, with curl")
    result = paste(walkthrough, api, env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # Each step's answer, in the order the walkthrough shows them.
    expected = [
        '{"database":"ok","status":"ok"}',
        "HTTP/1.1 201 CREATED",
        "Location: /users/1",
        '"token_type":"Bearer"',
        '"name":"Alice Smith"',
        "HTTP/1.1 204 NO CONTENT",
        '"error":"invalid_token"',
        '"error":"authorization_required"',
        '"error":"invalid_credentials"',
        '"error":"username_taken"',
        '"Is one of the most common passwords; choose another."',
        '"fields":{"body":"Invalid JSON body."}',
        '"error":"unsupported_media_type"',
        '"error":"unsupported_grant_type"',
        '"error":"method_not_allowed"',
        '"error":"not_found"',
    ]
    position = 0
    for answer in expected:
        found = out.find(answer, position)
        assert found >= 0, f"{answer!r} missing after position {position} in:\n{out}"
        position = found


def test_the_admin_examples(served):
    env, api = served
    created = run("flask users create root --role admin --password 'an admin passphrase here'", env)
    assert created.returncode == 0, created.stderr
    login = f"""ADMIN=$(curl -s -X POST {api}/token -u 'root:an admin passphrase here' \\
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
"""
    result = paste(login + shell_block(ROLES_PAGE, "After that, admins can do everything over HTTP"), api, env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"items":' in out and '"total":' in out
    assert '"role":"admin"' in out
    assert '"username":"carol"' in out
    assert '"error"' not in out.replace('"error":"last_admin"', "")
