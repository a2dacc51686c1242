"""The limit per client address on POST /token and POST /users: Flask-Limiter, in memory or in Redis, behind proxies.

In-process apps here, on the machine's Redis (REDIS_URL, `redis_db`) where they share it; two gunicorn workers
sharing it are servers/test_rate_limits_served.py's.
"""

import functools

import pytest
from helpers import PASSWORD, REDIS_URL, assert_error
from helpers import WRONG_LOGIN as WRONG

from tokenservice.web.memory_counts import MemoryCounts


@pytest.fixture
def limited(limited_app):
    """Build an app with limits on: 3 per minute per address unless said otherwise (and failed logins unlimited)."""
    return functools.partial(
        limited_app, {"TOKEN_RATE_LIMIT": "3 per minute", "LOGIN_FAILURE_LIMIT": "1000 per minute"}
    )


def assert_rate_limited(response):
    assert_error(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_the_fourth_attempt_in_a_minute_is_a_429(limited, auth):
    auth.add_user("alice")
    client = limited().test_client()
    answers = [client.post("/token", json=WRONG) for _ in range(3)]
    assert [response.status_code for response in answers] == [401, 401, 401]
    assert [response.headers["X-RateLimit-Remaining"] for response in answers] == ["2", "1", "0"]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert "Retry-After" not in answers[0].headers  # only a 429 says how long to wait
    assert_rate_limited(client.post("/token", json={"username": "alice", "password": PASSWORD}))


def test_signing_up_and_logging_in_share_one_allowance(limited, auth):
    auth.add_user("alice")
    client = limited().test_client()
    assert auth.token(client=client).status_code == 200
    assert auth.register("bob", client=client).status_code == 201
    assert auth.token("bob", client=client).status_code == 200
    assert_rate_limited(auth.register("carol", client=client))
    assert_rate_limited(auth.token(client=client))


def test_other_routes_and_other_addresses_are_not_limited(limited, auth):
    auth.add_user("alice")
    app = limited()
    client = app.test_client()
    tokens = [auth.login(client=client) for _ in range(3)]
    assert_rate_limited(auth.token(client=client))
    assert client.get("/health").status_code == 200
    assert client.get("/me", headers=tokens[0].headers).status_code == 200
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert auth.token(client=elsewhere).status_code == 200


def test_an_invented_forwarded_for_does_not_escape_the_limit(limited):
    client = limited().test_client()  # TRUSTED_PROXIES=0: X-Forwarded-For is not believed at all
    responses = [client.post("/token", json=WRONG, headers={"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(4)]
    assert [response.status_code for response in responses] == [401, 401, 401, 429]


def test_behind_one_trusted_proxy(limited):
    """The proxy appends the real client; what the client put before it is not believed."""
    client = limited(TRUSTED_PROXIES="1").test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.1"  # the proxy

    def attempt(forwarded_for):
        return client.post("/token", json=WRONG, headers={"X-Forwarded-For": forwarded_for})

    invented = [attempt(f"198.51.100.{i}, 203.0.113.5") for i in range(4)]
    assert [response.status_code for response in invented] == [401, 401, 401, 429]
    assert attempt("203.0.113.6").status_code == 401  # another real client, counted apart


def test_limits_off(limited):
    client = limited(RATELIMIT_ENABLED="false").test_client()
    responses = [client.post("/token", json=WRONG) for _ in range(40)]
    assert {response.status_code for response in responses} == {401}
    assert "X-RateLimit-Limit" not in responses[0].headers


def test_the_service_counts_in_memory_counts_when_the_storage_is_memory(make_app):
    """memory_counts.MemoryCounts (unit/test_memory_counts.py), for the limits and their fallback alike."""
    app = make_app(RATELIMIT_ENABLED="true")
    assert isinstance(app.extensions["rate_limiter"].storage, MemoryCounts)
    assert isinstance(app.extensions["rate_limiter_fallback"].limiter.storage, MemoryCounts)


def test_two_instances_count_together_in_redis(limited, redis_db):
    first = limited(RATELIMIT_STORAGE_URI=REDIS_URL).test_client()
    second = limited(RATELIMIT_STORAGE_URI=REDIS_URL).test_client()
    statuses = [client.post("/token", json=WRONG).status_code for client in (first, second, first, second)]
    assert statuses == [401, 401, 401, 429]
    assert redis_db.keys("*tokenservice*")


def test_redis_url_is_used_when_no_storage_is_named(limited, redis_db):
    client = limited(REDIS_URL=REDIS_URL).test_client()
    client.post("/token", json=WRONG)
    assert redis_db.keys("*tokenservice*")


def test_while_redis_is_unreachable_each_process_counts_alone(limited, caplog):
    client = limited(RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0").test_client()
    statuses = [client.post("/token", json=WRONG).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def change_password(client, session, address):
    body = {"current_password": PASSWORD, "new_password": PASSWORD}  # the same password again is allowed
    return client.post("/me/password", json=body, headers=session.headers, environ_base={"REMOTE_ADDR": address})


def test_password_changes_are_limited_per_account_and_per_address(limited, auth):
    """PASSWORD_CHANGE_RATE_LIMIT: one account from many addresses, and many accounts from one address."""
    for name in ("alice", "bob", "carol", "dave"):
        auth.add_user(name)
    app = limited(PASSWORD_CHANGE_RATE_LIMIT="2 per minute", TOKEN_RATE_LIMIT="100 per minute")
    client = app.test_client()
    alice, bob, carol, dave = (auth.login(name, client=client) for name in ("alice", "bob", "carol", "dave"))
    assert [change_password(client, alice, f"192.0.2.{i}").status_code for i in range(2)] == [204, 204]
    refused = change_password(client, alice, "192.0.2.99")  # a third address, the same account
    assert_rate_limited(refused)
    assert refused.json["message"] == "Too many attempts; try again later."
    assert [change_password(client, person, "198.51.100.1").status_code for person in (bob, carol)] == [204, 204]
    assert_rate_limited(change_password(client, dave, "198.51.100.1"))  # one address, a third account
    assert change_password(client, dave, "198.51.100.2").status_code == 204  # from elsewhere, dave may


def test_open_registrations_are_limited_per_address(limited, auth, admin):
    app = limited(REGISTRATION_RATE_LIMIT="2 per hour", TOKEN_RATE_LIMIT="100 per minute")
    client = app.test_client()
    assert [auth.register(f"user{i}", client=client).status_code for i in range(2)] == [201, 201]
    refused = auth.register("user2", client=client)
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert auth.register("user3", client=elsewhere).status_code == 201
    assert auth.token("user0", client=client).status_code == 200  # logins are not registrations
    # An admin's user with a role set is no sign-up; neither is any user when registration is closed.
    assert auth.register("staff", client=client, headers=admin.headers, role="user").status_code == 201
    closed = limited(ALLOW_REGISTRATION="false", REGISTRATION_RATE_LIMIT="2 per hour").test_client()
    created = [auth.register(f"hired{i}", client=closed, headers=admin.headers).status_code for i in range(3)]
    assert created == [201, 201, 201]


def test_while_redis_is_unreachable_password_changes_are_counted_in_the_process(limited, auth, app_log):
    auth.add_user("alice")
    app = limited(RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0", PASSWORD_CHANGE_RATE_LIMIT="1 per minute")
    client = app.test_client()
    alice = auth.login()  # on another app: this one's first request finds Redis unreachable
    assert change_password(client, alice, "127.0.0.1").status_code == 204
    assert_rate_limited(change_password(client, alice, "127.0.0.1"))
    # Said once, and Redis not asked again meanwhile: each try would cost a request its timeout.
    assert sum("counting in this process" in record.getMessage() for record in app_log.records) == 1


@pytest.mark.parametrize("invented", ["mallory", "198.51.100.7:4711", "not an address, 203.0.113.5x", ""])
def test_a_forwarded_for_that_is_not_an_ip_address_is_ignored(limited, app_log, invented):
    """TRUSTED_PROXIES=1 with no proxy in front: the client sends what it likes; only an IP address is believed."""
    client = limited(TRUSTED_PROXIES="1").test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    statuses = [client.post("/token", json=WRONG, headers={"X-Forwarded-For": invented}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]  # each counted as the connection's address
    assert {record.fields["client"] for record in app_log.records if record.getMessage() == "request"} == {"192.0.2.9"}
    warnings = [record.getMessage() for record in app_log.records if record.levelname == "WARNING"]
    if invented:  # an empty header is no hop at all: ProxyFix leaves the address alone
        assert sum("not an IP address" in warning for warning in warnings) == 1  # once, not per request
    app_log.clear()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.1"  # a real proxy's hop: still believed
    assert client.post("/token", json=WRONG, headers={"X-Forwarded-For": "2001:db8::5"}).status_code == 401
    assert [record.fields["client"] for record in app_log.records if record.getMessage() == "request"] == [
        "2001:db8::5"
    ]
