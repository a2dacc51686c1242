"""Cookie mode (JWT_TOKEN_LOCATION=headers,cookies): HttpOnly token cookies, CSRF double submit."""

import pytest
from helpers import PASSWORD, assert_refused

# What a login sets in cookie mode: the access and refresh cookies, and the two CSRF cookies.
LOGIN_COOKIES = 4
TOKEN_COOKIES = ("access_token_cookie", "refresh_token_cookie")


@pytest.fixture
def cookie_app(make_app):
    return make_app(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SECURE="false")


@pytest.fixture
def signed_in(cookie_app, auth):
    """A test client holding alice's cookies after POST /token."""
    auth.add_user("alice")
    client = cookie_app.test_client()
    response = auth.token(client=client)  # JSON, so the cookies are set (it needs a CORS preflight)
    assert response.status_code == 200
    return client, response


def set_cookies(response):
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def named(response, name):
    """The response's Set-Cookie headers for the cookie `name`."""
    return [header for header in response.headers.getlist("Set-Cookie") if header.startswith(name + "=")]


def path_of(header):
    return next(part for part in header.split("; ") if part.startswith("Path="))


def csrf(client):
    return {"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}


def test_login_sets_httponly_token_cookies_and_readable_csrf_cookies(signed_in):
    _, response = signed_in
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == LOGIN_COOKIES
    access = named(response, "access_token_cookie")
    refresh = named(response, "refresh_token_cookie")
    assert len(access) == 1 and "HttpOnly" in access[0] and "Path=/;" in access[0] and "SameSite=Lax" in access[0]
    assert len(refresh) == 1 and path_of(refresh[0]) == "Path=/" and "HttpOnly" in refresh[0]
    csrf_cookies = [c for c in cookies if c.startswith("csrf_")]
    assert len(csrf_cookies) == 2 and not any("HttpOnly" in c for c in csrf_cookies)
    assert response.json["access_token"]  # the JSON answer is unchanged


def test_production_cookies_are_secure(make_app, auth):
    auth.add_user("alice")
    client = make_app(JWT_TOKEN_LOCATION="headers,cookies", JWT_COOKIE_SAMESITE="Strict").test_client()
    response = auth.token(client=client)
    assert response.status_code == 200
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == LOGIN_COOKIES
    for cookie in cookies:
        assert "Secure" in cookie and "SameSite=Strict" in cookie
        # __Host-: a browser takes it only host-only, Secure, at Path=/, so no sibling can toss one in.
        assert cookie.startswith("__Host-") and path_of(cookie) == "Path=/" and "Domain=" not in cookie
    assert sorted(header.split("=", 1)[0] for header in cookies) == [
        "__Host-access_token_cookie",
        "__Host-csrf_access_token",
        "__Host-csrf_refresh_token",
        "__Host-refresh_token_cookie",
    ]
    client.set_cookie("__Host-access_token_cookie", response.json["access_token"])
    assert client.get("/me").json["username"] == "alice"


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


def test_header_tokens_keep_working_beside_cookies(cookie_app, auth):
    auth.add_user("alice")
    client = cookie_app.test_client()
    login = auth.login(client=client)
    client.delete_cookie("access_token_cookie")
    client.delete_cookie("csrf_access_token")
    assert client.patch("/me", json={"name": "Alice"}, headers=login.headers).status_code == 200  # no CSRF for headers


def test_logout_by_cookie_needs_csrf_ends_the_session_and_clears_the_cookies(signed_in):
    client, _ = signed_in
    assert client.post("/logout").json["error"] == "csrf_failed"
    response = client.post("/logout", headers=csrf(client))
    assert response.status_code == 204
    cleared = set_cookies(response)
    for name in ("access_token_cookie", "refresh_token_cookie", "csrf_access_token", "csrf_refresh_token"):
        assert "Expires=Thu, 01 Jan 1970" in cleared[name] or "Max-Age=0" in cleared[name]
    # Every cookie the login set is cleared.
    headers = response.headers.getlist("Set-Cookie")
    assert len(headers) == LOGIN_COOKIES
    assert all("Expires=Thu, 01 Jan 1970" in header or "Max-Age=0" in header for header in headers)
    assert client.get("/me").status_code == 401


def test_logout_with_only_the_refresh_cookie(signed_in):
    client, _ = signed_in
    client.delete_cookie("access_token_cookie")
    refresh_csrf = {"X-CSRF-TOKEN": client.get_cookie("csrf_refresh_token").value}
    assert client.post("/logout", headers=refresh_csrf).status_code == 204
    assert client.post("/token/refresh", headers=refresh_csrf).status_code == 401


def test_header_mode_sets_no_cookies(auth):
    auth.add_user("alice")
    response = auth.token()
    assert response.status_code == 200
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


def test_a_cross_site_form_cannot_log_a_browser_in(cookie_app, auth):
    """Login CSRF: a plain form post (no preflight) gets tokens in JSON, but no cookies."""
    auth.add_user("mallory")
    client = cookie_app.test_client()
    response = client.post(
        "/token", data={"username": "mallory", "password": PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []


@pytest.mark.parametrize(
    "credentials",
    ["Basic c3RhZmY6Z2F0ZQ==", 'Digest username="staff", realm="gate"', "Negotiate YIIB"],
    ids=["basic", "digest", "negotiate"],
)
def test_credentials_a_browser_adds_by_itself_set_no_cookies(cookie_app, auth, credentials):
    """Behind an HTTP-auth gate, the browser adds these to a cross-site form post: they prove nothing."""
    auth.add_user("mallory")
    response = cookie_app.test_client().post(
        "/token", data={"username": "mallory", "password": PASSWORD}, headers={"Authorization": credentials}
    )
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []


def test_a_bearer_refresh_still_sets_cookies(cookie_app, auth):
    """A browser never adds a Bearer token by itself, so a refresh with one may renew the cookies."""
    auth.add_user("alice")
    client = cookie_app.test_client()
    login = auth.login(client=client)
    response = auth.refresh(login.refresh_token, client=client)
    assert response.status_code == 200
    assert len(response.headers.getlist("Set-Cookie")) == LOGIN_COOKIES


def test_cookies_last_as_long_as_their_tokens(signed_in):
    _, response = signed_in
    assert "Max-Age=900" in set_cookies(response)["access_token_cookie"]
    assert "Max-Age=2592000" in set_cookies(response)["refresh_token_cookie"]


def test_a_refused_logout_still_clears_the_cookies(signed_in, cookie_app, auth):
    client, _ = signed_in
    token = csrf(client)
    other_client = cookie_app.test_client()
    other = auth.login(client=other_client)
    # Ends all of alice's sessions, this client's too.
    assert other_client.post("/logout?all=true", headers=other.headers).status_code == 204
    response = client.post("/logout", headers=token)
    assert_refused(response)
    assert "access_token_cookie" in set_cookies(response)
    assert client.get_cookie("access_token_cookie") is None


@pytest.mark.parametrize("name", TOKEN_COOKIES)
def test_a_token_cookie_sent_twice_is_refused_and_ours_are_cleared(signed_in, cookie_app, auth, name):
    """Cookie tossing: a page on another port, or a sibling subdomain, set its own cookie of the same name."""
    client, _ = signed_in
    auth.add_user("mallory")
    attackers = auth.login("mallory", client=cookie_app.test_client())
    theirs = attackers.access_token if name == "access_token_cookie" else attackers.refresh_token
    ours = client.get_cookie(name).value
    # The browser sends the more specific path first: the attacker's, set for path=/me.
    tossed = {
        "Cookie": f"{name}={theirs}; {name}={ours}; csrf_access_token={client.get_cookie('csrf_access_token').value}"
    }
    browser = cookie_app.test_client(use_cookies=False)  # sends exactly the Cookie header given
    for method, path in (("GET", "/me"), ("PATCH", "/me"), ("POST", "/logout"), ("POST", "/token/refresh")):
        response = browser.open(path, method=method, json={"name": "x"} if method == "PATCH" else None, headers=tossed)
        assert_refused(response)
        assert "twice" in response.json["message"]
        cleared = set_cookies(response)
        assert all("Max-Age=0" in cleared[cookie] or "1970" in cleared[cookie] for cookie in TOKEN_COOKIES)
    assert client.get("/me", headers={"Authorization": f"Bearer {attackers.access_token}"}).json["name"] is None
    assert browser.get("/health", headers=tossed).status_code == 200  # a route that reads no token is not affected
