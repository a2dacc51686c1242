"""Procfile's release and web commands, run as a Heroku-style host runs them.

They run in subprocesses from the repository root, against a schema of
their own given by a postgres:// DATABASE_URL, with real gunicorn.
"""

import pytest
from deployment import call, deploy_env, procfile, run, schema_url, web_server
from helpers import PASSWORD


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    return schema_url(app, database_url, "deploy_check")


def test_procfile_has_release_and_web():
    commands = procfile()
    assert commands["release"] == "flask db upgrade"
    assert "gunicorn" in commands["web"] and "src/gunicorn.conf.py" in commands["web"]


def test_release_twice_then_web_serves_the_api(heroku_url):
    env = deploy_env(heroku_url)
    for attempt in (1, 2):
        result = run(procfile()["release"], env)
        assert result.returncode == 0, f"release #{attempt} failed:\n{result.stderr}"

    with web_server(env) as (port, output):
        assert call(port, "GET", "/health") == (200, {"status": "ok", "database": "ok"})
        credentials = {"username": "heroku", "password": PASSWORD}
        assert call(port, "POST", "/users", credentials)[0] == 201
        status, tokens = call(port, "POST", "/token", credentials)
        assert status == 200 and tokens["token_type"] == "Bearer"
    assert "Booting worker" in output[0]
    assert f"Listening at: http://0.0.0.0:{port}" in output[0]


def test_web_refuses_a_short_secret_in_production(heroku_url):
    env = deploy_env(heroku_url, JWT_SECRET_KEY="too-short")
    result = run(procfile()["web"], env, timeout=60)
    assert result.returncode != 0
    assert "JWT_SECRET_KEY must be at least 32 bytes" in result.stderr


def test_flask_cli_works_from_the_root_without_app(heroku_url):
    env = deploy_env(heroku_url)
    assert run(procfile()["release"], env).returncode == 0
    result = run(f"flask users create cli-user --password '{PASSWORD}'", env)
    assert result.returncode == 0, result.stderr
    assert "Created user 'cli-user'" in result.stdout
