"""The limit per client address under gunicorn: two workers count together in Redis, or say that each counts alone."""

import pytest
from deployment import deploy_env, exchange, released_schema, web_server
from helpers import REDIS_URL
from helpers import WRONG_LOGIN as WRONG


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    return released_schema(app, database_url, "rate_limit_check")


def test_gunicorn_workers_share_the_count_in_redis_behind_a_proxy(heroku_url, redis_db):
    """Two workers, one Redis, TRUSTED_PROXIES=1: a client inventing addresses is still one client."""
    limits = {"TOKEN_RATE_LIMIT": "5 per minute", "LOGIN_FAILURE_LIMIT": "1000 per minute"}
    env = deploy_env(heroku_url, REDIS_URL=REDIS_URL, TRUSTED_PROXIES="1", **limits)
    with web_server(env) as (port, _):
        statuses = [
            exchange(port, "POST", "/token", WRONG, {"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.9"})[0]
            for i in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3
        status, headers, body = exchange(port, "POST", "/token", WRONG, {"X-Forwarded-For": "203.0.113.10"})
        assert status == 401
        assert headers["X-RateLimit-Remaining"] == "4"


def test_gunicorn_says_once_that_limits_are_per_process(heroku_url):
    with web_server(deploy_env(heroku_url, WEB_CONCURRENCY="2")) as (port, output):
        pass
    assert output[0].count("counted per process") == 1
