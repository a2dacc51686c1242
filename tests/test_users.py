"""POST /users: registration."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PASSWORD
from sqlalchemy import func

from tokenservice.extensions import db
from tokenservice.models import User

USER_FIELDS = {"id", "username", "name", "role", "is_active", "created_at", "updated_at"}


def register(client, **body):
    return client.post("/users", json={"username": "alice", "password": PASSWORD, **body})


def test_register_returns_the_user_and_its_location(client):
    response = register(client, name="Alice Smith")
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


def test_password_is_stored_as_argon2id(client, app):
    register(client)
    with app.app_context():
        stored = db.session.execute(db.select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")


@pytest.mark.parametrize("taken", ["alice", "Alice", "ALICE"])
def test_usernames_are_unique_regardless_of_case(client, taken):
    assert register(client, username="alice").status_code == 201
    response = register(client, username=taken)
    assert response.status_code == 409
    assert response.json["error"] == "username_taken"


def test_twenty_concurrent_registrations_of_one_name_make_one_user(app):
    names = ["race", "Race", "RACE", "rAce"] * 5

    def attempt(name):
        return app.test_client().post("/users", json={"username": name, "password": PASSWORD})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(attempt, names))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19
    assert {r.json["error"] for r in responses if r.status_code == 409} == {"username_taken"}
    with app.app_context():
        assert db.session.execute(db.select(func.count()).select_from(User)).scalar() == 1


@pytest.mark.parametrize(
    "username",
    ["ab", "x" * 65, "has space", "ünïcode", "аlice", "alice\n", "a/b", "al@ce", ""],
)
def test_bad_usernames_are_refused(client, username):
    response = register(client, username=username)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert "username" in response.json["fields"]


@pytest.mark.parametrize("username", ["abc", "x" * 64, "alice.smith_2-b", "A.B"])
def test_good_usernames_are_accepted(client, username):
    assert register(client, username=username).status_code == 201


@pytest.mark.parametrize("password", ["short", "password123", "qwerty123", "alice", " " * 10, "x" * 1025])
def test_weak_passwords_are_refused(client, password):
    response = register(client, password=password, username="alice")
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"password"}


def test_missing_fields_are_named(client):
    response = client.post("/users", json={})
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"username", "password"}


@pytest.mark.parametrize("body", [{"is_admin": True}, {"id": 7}, {"password_hash": "x"}])
def test_unknown_fields_are_refused(client, body):
    response = register(client, **body)
    assert response.status_code == 400
    assert set(response.json["fields"]) == set(body)


@pytest.mark.parametrize("value", [123, None, ["alice"], {"a": 1}])
def test_wrong_types_are_refused(client, value):
    response = client.post("/users", json={"username": value, "password": PASSWORD})
    assert response.status_code == 400
    assert "username" in response.json["fields"]


def test_a_role_from_anyone_but_an_admin_is_forbidden(client, app):
    response = register(client, role="admin")
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"
    with app.app_context():
        assert db.session.execute(db.select(func.count()).select_from(User)).scalar() == 0


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


def test_an_admin_may_set_the_role(client, admin):
    response = client.post(
        "/users", json={"username": "newadmin", "password": PASSWORD, "role": "admin"}, headers=admin["headers"]
    )
    assert response.status_code == 201
    assert response.json["role"] == "admin"


def test_a_user_may_not_set_the_role(client, alice, app):
    response = client.post(
        "/users", json={"username": "sneaky", "password": PASSWORD, "role": "user"}, headers=alice["headers"]
    )
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", error="insufficient_scope"'


def test_open_registration_ignores_a_stale_token(client, alice):
    client.post("/logout", headers=alice["headers"])
    response = client.post("/users", json={"username": "carol", "password": PASSWORD}, headers=alice["headers"])
    assert response.status_code == 201


@pytest.fixture
def closed(make_app):
    """The app with ALLOW_REGISTRATION=false."""
    return make_app(ALLOW_REGISTRATION="false").test_client()


def test_closed_registration_needs_a_token(closed):
    response = closed.post("/users", json={"username": "carol", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json["error"] == "authorization_required"


def test_closed_registration_refuses_ordinary_users(closed, alice):
    response = closed.post("/users", json={"username": "carol", "password": PASSWORD}, headers=alice["headers"])
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_closed_registration_lets_admins_create_users(closed, admin):
    response = closed.post("/users", json={"username": "carol", "password": PASSWORD}, headers=admin["headers"])
    assert response.status_code == 201
    assert response.json["role"] == "user"


def test_closed_registration_checks_the_token_before_the_body(closed):
    response = closed.post("/users", json={"username": "x", "password": "short"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/users", "/me"])
def test_a_nul_in_a_name_is_a_400_not_a_500(client, alice, path):
    if path == "/users":
        response = client.post("/users", json={"username": "bob", "password": PASSWORD, "name": "b\u0000b"})
    else:
        response = client.patch("/me", json={"name": "b\u0000b"}, headers=alice["headers"])
    assert response.status_code == 400
    assert "name" in response.json["fields"]
