"""POST /users: registration."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PASSWORD, USER_FIELDS, assert_error, assert_forbidden, assert_refused
from sqlalchemy import func, select

from tokenservice.rules.exceptions import PasswordRefused
from tokenservice.rules.users import create_user
from tokenservice.storage.models import User

USER_COUNT = select(func.count()).select_from(User)


def test_register_returns_the_user_and_its_location(auth):
    response = auth.register(name="Alice Smith")
    assert response.status_code == 201
    assert set(response.json) == USER_FIELDS
    assert response.json["username"] == "alice"
    assert response.json["name"] == "Alice Smith"
    assert response.json["role"] == "user"
    assert response.json["is_active"] is True
    assert response.json["created_at"].endswith("+00:00")  # timezone-aware
    assert response.headers["Location"] == f"/users/{response.json['id']}"
    assert response.headers["Cache-Control"] == "no-store"
    assert PASSWORD not in response.get_data(as_text=True)


def test_password_is_stored_as_argon2id(auth, database):
    assert auth.register().status_code == 201
    (stored,) = database.scalars(select(User.password_hash))
    assert stored.startswith("$argon2id$")


@pytest.mark.parametrize("taken", ["alice", "Alice", "ALICE"])
def test_usernames_are_unique_regardless_of_case(auth, taken):
    assert auth.register("alice").status_code == 201
    assert_error(auth.register(taken), 409, "username_taken")


def test_twenty_concurrent_registrations_of_one_name_make_one_user(app, auth, database):
    names = ["race", "Race", "RACE", "rAce"] * 5

    def attempt(name):
        return auth.register(name, client=app.test_client())

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(attempt, names))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    assert {r.json["error"] for r in responses if r.status_code == 409} == {"username_taken"}
    assert database.scalar(USER_COUNT) == 1


@pytest.mark.parametrize(
    "username",
    ["ab", "x" * 65, "has space", "ünïcode", "аlice", "alice\n", "a/b", "al@ce", ""],
)
def test_bad_usernames_are_refused(auth, username):
    response = auth.register(username)
    assert_error(response, 400, "invalid_request")
    assert "username" in response.json["fields"]


@pytest.mark.parametrize("username", ["abc", "x" * 64, "alice.smith_2-b", "A.B"])
def test_good_usernames_are_accepted(auth, username):
    assert auth.register(username).status_code == 201


@pytest.mark.parametrize("password", ["short", "password123", "qwerty123", "alice", " " * 10, "x" * 1025])
def test_weak_passwords_are_refused(auth, password):
    response = auth.register("alice", password)
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == {"password"}


def test_missing_fields_are_named(client):
    response = client.post("/users", json={})
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"username", "password"}


@pytest.mark.parametrize("body", [{"is_admin": True}, {"id": 7}, {"password_hash": "x"}])
def test_unknown_fields_are_refused(auth, body):
    response = auth.register(**body)
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == set(body)


@pytest.mark.parametrize("value", [123, None, ["alice"], {"a": 1}])
def test_wrong_types_are_refused(auth, value):
    response = auth.register(value)
    assert_error(response, 400, "invalid_request")
    assert "username" in response.json["fields"]


def test_a_role_from_anyone_but_an_admin_is_forbidden(auth, database):
    assert_forbidden(auth.register(role="admin"))
    assert database.scalar(USER_COUNT) == 0


def test_invalid_json_is_a_400(client):
    response = client.post("/users", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "body" in response.json["fields"]


def test_a_json_array_is_a_400(client):
    response = client.post("/users", json=[{"username": "alice", "password": PASSWORD}])
    assert response.status_code == 400
    assert "body" in response.json["fields"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_other_media_types_are_a_415(client, content_type):
    response = client.post("/users", data="username=alice", content_type=content_type)
    assert response.status_code == 415
    assert response.json["error"] == "unsupported_media_type"


def test_an_admin_may_set_the_role(auth, admin):
    response = auth.register("newadmin", role="admin", headers=admin.headers)
    assert response.status_code == 201
    assert response.json["role"] == "admin"


def test_a_user_may_not_set_the_role(auth, alice):
    assert_forbidden(auth.register("sneaky", role="user", headers=alice.headers))


def test_open_registration_ignores_a_stale_token(client, auth, alice):
    assert client.post("/logout", headers=alice.headers).status_code == 204
    assert client.get("/me", headers=alice.headers).status_code == 401  # stale indeed
    assert auth.register("carol", headers=alice.headers).status_code == 201


@pytest.fixture
def closed(make_app):
    """The app with ALLOW_REGISTRATION=false."""
    return make_app(ALLOW_REGISTRATION="false").test_client()


def test_closed_registration_needs_a_token(auth, closed):
    assert_refused(auth.register("carol", client=closed), "authorization_required")


def test_closed_registration_refuses_ordinary_users(auth, closed, alice):
    assert_forbidden(auth.register("carol", client=closed, headers=alice.headers))


def test_closed_registration_lets_admins_create_users(auth, closed, admin):
    response = auth.register("carol", client=closed, headers=admin.headers)
    assert response.status_code == 201
    assert response.json["role"] == "user"


def test_closed_registration_checks_the_token_before_the_body(auth, closed):
    assert_refused(auth.register("x", "short", client=closed), "authorization_required")


@pytest.mark.parametrize("path", ["/users", "/me"])
def test_a_nul_in_a_name_is_a_400_not_a_500(client, auth, alice, path):
    if path == "/users":
        response = auth.register("bob", name="b\u0000b")
    else:
        response = client.patch("/me", json={"name": "b\u0000b"}, headers=alice.headers)
    assert_error(response, 400, "invalid_request")
    assert "name" in response.json["fields"]


@pytest.mark.parametrize("password", ["short", "password123", "x" * 1025])
def test_the_rule_that_creates_a_user_refuses_what_the_api_refuses(app, database, password):
    """Called from anywhere (the CLI, an admin route), not only behind NewUserSchema; nothing is written."""
    with app.app_context(), pytest.raises(PasswordRefused) as refused:
        create_user(username="alice", password=password)
    assert set(refused.value.fields) == {"password"}
    assert database.scalar(select(func.count()).select_from(User)) == 0
