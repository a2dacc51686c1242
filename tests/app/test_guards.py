"""Every route's guard, tried from outside: each way past it is refused, and the document says what it does.

The routes are read from the app itself, so a route added later is tried the
same way as soon as it exists.
"""

import pytest
from helpers import (
    ACCESS_GUARDS,
    ADMIN_GUARDS,
    CLIENT_ID,
    SESSION_ID,
    TAMPERINGS,
    TOKEN_GUARDS,
    api_routes,
    assert_forbidden,
    assert_refused,
    call,
    claims_of,
    forge,
    now,
    tamper,
)
from sqlalchemy import func, update

from tokenservice.storage.models import LoginSession
from tokenservice.web import guards


def test_every_api_route_has_a_guard(app):
    routes = api_routes(app)
    assert len(routes) == 36
    assert {guard for _, _, guard in routes} == {
        guards.ANYONE,
        guards.REGISTRATION,
        guards.INTROSPECTING_CLIENT,
        *TOKEN_GUARDS,
    }


def test_no_token(app, client):
    routes = api_routes(app, TOKEN_GUARDS)
    assert len(routes) == 24
    for method, path, _ in routes:
        assert_refused(call(client, method, path), "authorization_required")


@pytest.mark.parametrize("how", TAMPERINGS)
def test_a_tampered_token(app, client, admin, how):
    for claims in (admin.claims, claims_of(admin.refresh_token)):
        token = tamper(claims, how)
        for method, path, _ in api_routes(app, TOKEN_GUARDS):
            assert_refused(call(client, method, path, token))


def test_an_expired_token(app, client, admin):
    """Everywhere but /logout, which takes an expired token of a live session on purpose."""
    for claims in (admin.claims, claims_of(admin.refresh_token)):
        expired = forge(claims, iat=now() - 100, nbf=now() - 100, exp=now() - 10)
        for method, path, _ in api_routes(app, TOKEN_GUARDS - {guards.SESSION_TOKEN}):
            assert_refused(call(client, method, path, expired), "token_expired")


def test_the_wrong_kind_of_token(app, client, admin):
    for method, path, _ in api_routes(app, ACCESS_GUARDS):
        assert_refused(call(client, method, path, admin.refresh_token))
    for method, path, _ in api_routes(app, {guards.REFRESH_TOKEN}):
        assert_refused(call(client, method, path, admin.access_token))


def test_a_token_of_an_ended_session(app, client, admin, database):
    database.execute(update(LoginSession).values(ended_at=func.now()))
    for method, path, guard in api_routes(app, TOKEN_GUARDS):
        token = admin.refresh_token if guard is guards.REFRESH_TOKEN else admin.access_token
        assert_refused(call(client, method, path, token))


def test_an_ordinary_user_on_admin_routes(app, client, alice):
    routes = api_routes(app, ADMIN_GUARDS)
    assert len(routes) == 11
    for method, path, _ in routes:
        assert_forbidden(call(client, method, path, alice.access_token))


def test_closed_registration(make_app, alice):
    client = make_app(ALLOW_REGISTRATION="false").test_client()
    assert_refused(call(client, "POST", "/users"), "authorization_required")
    assert_forbidden(call(client, "POST", "/users", alice.access_token))


def test_the_document_follows_each_guard(app, client):
    document = client.get("/openapi.json").json
    for method, path, guard in api_routes(app):
        template = path.replace(SESSION_ID, "{session_id}").replace("/1", "/{user_id}")
        template = template.replace(CLIENT_ID, "{client_id}")
        operation = document["paths"][template][method.lower()]
        if guard is not guards.ANYONE:
            assert operation["security"] == guard.security, (method, path)
        assert {str(status) for status in guard.errors} <= set(operation["responses"]), (method, path)
        if guard in TOKEN_GUARDS | {guards.REGISTRATION}:
            assert "401" in operation["responses"]
        if guard.reads_token and method in guards.CSRF_METHODS:
            assert "403" in operation["responses"], (method, path)  # csrf_failed in cookie mode
