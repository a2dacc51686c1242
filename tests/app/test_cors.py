"""CORS: exact origins echoed with Vary: Origin, preflights cached, credentials only in cookie mode."""

import pytest

ORIGIN = "http://localhost:5173"
ORIGINS = f"{ORIGIN},http://127.0.0.1:5173"


def preflight(client, origin, path="/me", method="GET", headers="Authorization"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def cors_headers(response) -> list[str]:
    """The names of the response's Access-Control-* headers, in any case."""
    return [name for name in response.headers.keys() if name.lower().startswith("access-control-")]


@pytest.fixture
def cors_client(make_app):
    return make_app(CORS_ORIGINS=ORIGINS).test_client()


@pytest.mark.parametrize("origin", [ORIGIN, "http://127.0.0.1:5173"])
def test_a_listed_origin_is_echoed_exactly(cors_client, origin):
    response = cors_client.get("/health", headers={"Origin": origin})
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers  # header mode


def test_one_origin_still_varies_on_origin(make_app):
    client = make_app(CORS_ORIGINS=ORIGIN).test_client()
    response = client.get("/health", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://localhost:5174", "https://localhost:5173", "http://localhost"]
)
def test_other_origins_get_no_cors_headers(cors_client, origin):
    assert cors_headers(cors_client.get("/health", headers={"Origin": origin})) == []
    assert cors_headers(preflight(cors_client, origin)) == []


@pytest.mark.parametrize("headers", ["Authorization", "Content-Type", "authorization, content-type"])
def test_preflights_are_answered_and_cached(cors_client, headers):
    response = preflight(cors_client, ORIGIN, path="/me", method="PATCH", headers=headers)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    for header in headers.split(","):
        assert header.strip().lower() in allowed
    assert response.headers["Access-Control-Max-Age"] == "600"


def test_the_csrf_header_is_allowed_only_in_cookie_mode(cors_client, make_app):
    plain = preflight(cors_client, ORIGIN, method="POST", headers="X-CSRF-TOKEN")
    assert "x-csrf-token" not in plain.headers.get("Access-Control-Allow-Headers", "").lower()
    cookie_client = make_app(CORS_ORIGINS=ORIGINS, JWT_TOKEN_LOCATION="headers,cookies").test_client()
    response = preflight(cookie_client, ORIGIN, method="POST", headers="X-CSRF-TOKEN")
    assert "x-csrf-token" in response.headers["Access-Control-Allow-Headers"].lower()
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_errors_carry_cors_headers_too(cors_client):
    response = cors_client.get("/me", headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


def test_no_origins_means_no_cors_at_all(make_app):
    client = make_app(CORS_ORIGINS="none").test_client()
    response = client.get("/health", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_production_defaults_to_no_origins(client):
    response = client.get("/health", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origin_header_gets_no_cors_headers(cors_client):
    assert "Access-Control-Allow-Origin" not in cors_client.get("/health").headers


@pytest.mark.parametrize(
    ("configured", "origin", "allowed"),
    [
        ("http://[::1]:5173", "http://[::1]:5173", True),
        ("http://[::1]:5173", "http://1:5173", False),  # not a regex
        ("https://app.example.com", "https://app.example.com.evil.example", False),  # anchored
        ("https://App.Example.com:443", "https://app.example.com", True),  # default port, any case
    ],
)
def test_origins_are_matched_exactly(make_app, configured, origin, allowed):
    client = make_app(CORS_ORIGINS=configured).test_client()
    response = client.get("/health", headers={"Origin": origin})
    assert ("Access-Control-Allow-Origin" in response.headers) is allowed


@pytest.mark.parametrize("path", ["/health", "/app.js", "/docs/swagger-ui.css", "/nowhere"])
@pytest.mark.parametrize("origin", [None, ORIGIN, "http://evil.example"])
def test_with_cors_every_answer_varies_on_origin(cors_client, path, origin):
    """Cacheable files too, also when fetched without an Origin: a cache must not hand them to another origin."""
    response = cors_client.get(path, headers={"Origin": origin} if origin else {})
    response.close()
    assert "Origin" in response.vary


@pytest.mark.parametrize(
    "entry",
    [
        "https://a.example/app",
        "https://a.example?x=1",
        "https://a.example#top",
        "https://user@a.example",
        "http://[::1",
        "http://a.example]",
        "https://a.example:99999",
        "https://*.example.com",
    ],
    ids=["path", "query", "fragment", "user-info", "open-bracket", "stray-bracket", "bad-port", "wildcard"],
)
def test_entries_that_are_not_origins_stop_the_app(make_app, entry):
    from tokenservice.config import ConfigError

    with pytest.raises(ConfigError, match="CORS_ORIGINS must list exact origins"):
        make_app(CORS_ORIGINS=f"http://localhost:5173,{entry}")
