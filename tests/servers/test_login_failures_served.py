"""Failed logins counted in PostgreSQL under gunicorn: two workers share one count, without Redis."""

import pytest
from deployment import deploy_env, exchange, login, released_schema, web_server
from helpers import PASSWORD, WRONG_PASSWORD


@pytest.fixture(scope="module")
def heroku_url(app, database_url):
    return released_schema(app, database_url, "login_failure_check", users=("alice",))


def test_gunicorn_workers_share_the_count_without_redis_and_the_owners_device_still_logs_in(heroku_url):
    env = deploy_env(heroku_url, LOGIN_FAILURE_LIMIT="3 per 15 minutes", TRUSTED_PROXIES="1")
    with web_server(env) as (port, _):
        owner = login(port)["device_token"]
        guess = {"username": "alice", "password": WRONG_PASSWORD}
        addresses = [{"X-Forwarded-For": f"198.51.100.{i}"} for i in range(6)]
        statuses = [exchange(port, "POST", "/token", guess, address)[0] for address in addresses]
        right = {"username": "alice", "password": PASSWORD}
        stranger = exchange(port, "POST", "/token", right, {"X-Forwarded-For": "203.0.113.1"})[0]
        owners_device = exchange(port, "POST", "/token", {**right, "device_token": owner}, addresses[0])[0]
    assert statuses == [401] * 3 + [429] * 3
    assert (stranger, owners_device) == (429, 200)  # strangers are locked out, the owner's device is not
