"""Two instances of the service on one PostgreSQL and one Redis agree at once on tokens, logouts and limits."""

import pytest
import redis
from deployment import deploy_env, exchange, login, procfile, run, schema_url, web_server
from helpers import PASSWORD, bearer

REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of the machine's Redis that only this test uses
ALICE = {"username": "alice", "password": PASSWORD}


@pytest.fixture(scope="module")
def instances(app, database_url):
    redis.Redis.from_url(REDIS_URL).flushdb()
    url = schema_url(app, database_url, "instances_check")
    settings = {"REDIS_URL": REDIS_URL, "TOKEN_RATE_LIMIT": "1000 per minute", "JWT_REFRESH_REUSE_WINDOW": "0"}
    first, second = deploy_env(url, **settings), deploy_env(url, **settings)  # two ports
    assert run(procfile()["release"], first).returncode == 0
    assert run(f"flask users create root --role admin --password '{PASSWORD}'", first).returncode == 0
    with web_server(first) as (a, _), web_server(second) as (b, _):
        yield a, b
    redis.Redis.from_url(REDIS_URL).flushdb()


def me(port, token) -> int:
    return exchange(port, "GET", "/me", headers=bearer(token))[0]


def test_a_token_from_one_works_on_the_other_and_a_logout_on_one_ends_it_on_both(instances):
    a, b = instances
    exchange(a, "POST", "/users", ALICE)
    tokens = login(a)
    assert (me(a, tokens["access_token"]), me(b, tokens["access_token"])) == (200, 200)
    assert exchange(b, "POST", "/logout", headers=bearer(tokens["access_token"]))[0] == 204
    assert (me(a, tokens["access_token"]), me(b, tokens["access_token"])) == (401, 401)


def test_a_password_change_on_one_ends_the_other_sessions_on_both(instances):
    a, b = instances
    kept, other = login(a), login(b)
    body = {"current_password": PASSWORD, "new_password": "an interim passphrase"}
    assert exchange(a, "POST", "/me/password", body, bearer(kept["access_token"]))[0] == 204
    assert (me(a, other["access_token"]), me(b, other["access_token"])) == (401, 401)
    assert me(b, kept["access_token"]) == 200
    body = {"current_password": "an interim passphrase", "new_password": PASSWORD}
    assert exchange(b, "POST", "/me/password", body, bearer(kept["access_token"]))[0] == 204


def test_a_deactivation_on_one_takes_effect_on_the_other(instances):
    a, b = instances
    exchange(a, "POST", "/users", {"username": "bob", "password": PASSWORD})
    bob = login(b, "bob")
    root = login(a, "root")
    status = exchange(a, "PATCH", f"/users/{bob['user_id']}", {"is_active": False}, bearer(root["access_token"]))[0]
    assert status == 200
    assert (me(a, bob["access_token"]), me(b, bob["access_token"])) == (401, 401)


def test_a_refresh_token_reused_across_them_ends_the_session(instances):
    a, b = instances
    stolen = login(a)
    rotated = exchange(a, "POST", "/token/refresh", headers=bearer(stolen["refresh_token"]))[2]
    assert exchange(b, "POST", "/token/refresh", headers=bearer(stolen["refresh_token"]))[0] == 401  # reuse
    assert (me(a, rotated["access_token"]), me(b, rotated["access_token"])) == (401, 401)
    assert exchange(a, "POST", "/token/refresh", headers=bearer(rotated["refresh_token"]))[0] == 401


def test_a_rate_limit_counts_requests_to_both(app, database_url):
    url = schema_url(app, database_url, "instances_limit_check")
    settings = {"REDIS_URL": REDIS_URL, "TOKEN_RATE_LIMIT": "4 per minute", "LOGIN_FAILURE_LIMIT": "100 per minute"}
    first, second = deploy_env(url, **settings), deploy_env(url, **settings)
    assert run(procfile()["release"], first).returncode == 0
    redis.Redis.from_url(REDIS_URL).flushdb()
    with web_server(first) as (a, _), web_server(second) as (b, _):
        statuses = [exchange(port, "POST", "/token", {"username": "x", "password": "y"})[0] for port in (a, b) * 3]
    assert statuses == [401, 401, 401, 401, 429, 429]
