"""Cookie mode (JWT_TOKEN_LOCATION=headers,cookies): HttpOnly token cookies, CSRF double submit."""

import pytest
from helpers import PASSWORD, bearer


@pytest.fixture
def cookie_app(make_app):
    return make_app(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SECURE="false")


@pytest.fixture
def signed_in(cookie_app, add_user):
    """A test client holding alice's cookies after POST /token."""
    add_user("alice")
    client = cookie_app.test_client()
    response = client.post("/token", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    return client, response


def set_cookies(response):
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def csrf(client):
    return {"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}


def test_login_sets_httponly_token_cookies_and_readable_csrf_cookies(signed_in):
    _, response = signed_in
    cookies = response.headers.getlist("Set-Cookie")
    access = [c for c in cookies if c.startswith("access_token_cookie=")]
    refresh = [c for c in cookies if c.startswith("refresh_token_cookie=")]
    assert len(access) == 1 and "HttpOnly" in access[0] and "Path=/;" in access[0] and "SameSite=Lax" in access[0]
    assert sorted("Path=/token/refresh" in c or "Path=/logout" in c for c in refresh) == [True, True]
    assert all("HttpOnly" in c for c in refresh)
    csrf_cookies = [c for c in cookies if c.startswith("csrf_")]
    assert len(csrf_cookies) == 2 and not any("HttpOnly" in c for c in csrf_cookies)
    assert response.json["access_token"]  # the JSON answer is unchanged


def test_production_cookies_are_secure(make_app, add_user):
    add_user("alice")
    client = make_app(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SAMESITE="Strict").test_client()
    response = client.post("/token", json={"username": "alice", "password": PASSWORD})
    for cookie in response.headers.getlist("Set-Cookie"):
        assert "Secure" in cookie and "SameSite=Strict" in cookie


def test_a_cookie_authenticates_a_read(signed_in):
    client, _ = signed_in
    assert client.get("/me").json["username"] == "alice"


def test_a_cookie_authenticated_change_needs_the_csrf_header(signed_in):
    client, _ = signed_in
    refused = client.patch("/me", json={"name": "Mallory"})
    assert refused.status_code == 403
    assert refused.json["error"] == "csrf_failed"
    wrong = client.patch("/me", json={"name": "Mallory"}, headers={"X-CSRF-TOKEN": "guess"})
    assert wrong.status_code == 403 and wrong.json["error"] == "csrf_failed"
    assert client.get("/me").json["name"] is None
    allowed = client.patch("/me", json={"name": "Alice"}, headers=csrf(client))
    assert allowed.status_code == 200 and allowed.json["name"] == "Alice"


def test_refresh_by_cookie_needs_the_csrf_header_and_rotates_the_cookies(signed_in):
    client, _ = signed_in
    refused = client.post("/token/refresh")
    assert refused.status_code == 403 and refused.json["error"] == "csrf_failed"
    header = {"X-CSRF-TOKEN": client.get_cookie("csrf_refresh_token").value}
    response = client.post("/token/refresh", headers=header)
    assert response.status_code == 200
    assert "access_token_cookie" in set_cookies(response)
    assert client.get("/me").status_code == 200


def test_header_tokens_keep_working_beside_cookies(cookie_app, add_user):
    add_user("alice")
    client = cookie_app.test_client()
    tokens = client.post("/token", json={"username": "alice", "password": PASSWORD}).json
    client.delete_cookie("access_token_cookie")
    client.delete_cookie("csrf_access_token")
    headers = bearer(tokens["access_token"])
    assert client.patch("/me", json={"name": "Alice"}, headers=headers).status_code == 200  # no CSRF for headers


def test_logout_by_cookie_needs_csrf_ends_the_session_and_clears_the_cookies(signed_in):
    client, _ = signed_in
    assert client.post("/logout").json["error"] == "csrf_failed"
    response = client.post("/logout", headers=csrf(client))
    assert response.status_code == 204
    cleared = set_cookies(response)
    for name in ("access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"):
        assert "Expires=Thu, 01 Jan 1970" in cleared[name] or "Max-Age=0" in cleared[name]
    assert client.get("/me").status_code == 401


def test_logout_with_only_the_refresh_cookie(signed_in):
    client, _ = signed_in
    client.delete_cookie("access_token_cookie")
    refresh_csrf = {"X-CSRF-TOKEN": client.get_cookie("csrf_refresh_token").value}
    assert client.post("/logout", headers=refresh_csrf).status_code == 204
    assert client.post("/token/refresh", headers=refresh_csrf).status_code == 401


def test_header_mode_sets_no_cookies(client, add_user):
    add_user("alice")
    response = client.post("/token", json={"username": "alice", "password": PASSWORD})
    assert response.headers.getlist("Set-Cookie") == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JWT_TOKEN_LOCATION", "query_string"), ("JWT_COOKIE_SAMESITE", "Loose"), ("JWT_COOKIE_SAMESITE", "None")],
)
def test_bad_cookie_settings_stop_the_app(make_app, variable, value):
    from tokenservice.config import ConfigError

    environ = {"JWT_COOKIE_SECURE": "false", "JWT_TOKEN_LOCATION": "headers,cookies", variable: value}
    with pytest.raises(ConfigError, match=variable):
        make_app(**environ)


def test_a_cross_site_form_cannot_log_a_browser_in(cookie_app, add_user):
    """Login CSRF: a plain form post (no preflight) gets tokens in JSON, but no cookies."""
    add_user("mallory")
    client = cookie_app.test_client()
    response = client.post(
        "/token", data={"username": "mallory", "password": PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []


def test_cookies_last_as_long_as_their_tokens(signed_in):
    cookies = set_cookies(signed_in[1])
    assert "Max-Age=900" in cookies["access_token_cookie"]
    assert all(
        "Max-Age=2592000" in header
        for header in signed_in[1].headers.getlist("Set-Cookie")
        if header.startswith("refresh_token_cookie=")
    )


def test_a_refused_logout_still_clears_the_cookies(signed_in, cookie_app, login):
    client, _ = signed_in
    token = csrf(client)
    other = cookie_app.test_client()
    tokens = other.post("/token", json={"username": "alice", "password": PASSWORD}).json
    other.post("/logout?all=true", headers=bearer(tokens["access_token"]))  # ends this client's session too
    response = client.post("/logout", headers=token)
    assert response.status_code == 401
    assert "access_token_cookie" in set_cookies(response)
    assert client.get_cookie("access_token_cookie") is None
