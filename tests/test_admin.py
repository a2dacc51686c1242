"""The admin endpoints: GET/PATCH/DELETE /users..., the admin guard, and the last-admin rule."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import PASSWORD, bearer, claims_of

from tokenservice import users as users_module
from tokenservice.extensions import db
from tokenservice.models import User

INSUFFICIENT_SCOPE = 'Bearer realm="api", error="insufficient_scope"'
ADMIN_ROUTES = [
    ("get", "/users", None),
    ("get", "/users/1", None),
    ("patch", "/users/1", {"name": "x"}),
    ("delete", "/users/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_an_ordinary_user_gets_403_everywhere_admin_only(client, alice, method, path, body):
    response = getattr(client, method)(path, json=body, headers=alice["headers"])
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"
    assert response.headers["WWW-Authenticate"] == INSUFFICIENT_SCOPE


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_no_token_is_401_on_admin_routes(client, method, path, body):
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 401
    assert response.json["error"] == "authorization_required"


def test_a_forged_role_claim_is_not_enough(client, alice, app):
    """The role is read from the live user, not from the token."""
    from helpers import forge

    forged = forge(claims_of(alice["tokens"]["access_token"]), role="admin")
    assert client.get("/users", headers=bearer(forged)).status_code == 403


def test_a_demotion_takes_effect_at_once(client, admin, app):
    with app.app_context():
        db.session.execute(db.update(User).values(role="user"))
        db.session.commit()
    # The session is still live (set directly, not through the API), the claim still says admin:
    assert claims_of(admin["tokens"]["access_token"])["role"] == "admin"
    assert client.get("/users", headers=admin["headers"]).status_code == 403


def test_a_refresh_token_is_not_an_admins_access_token(client, admin):
    response = client.get("/users", headers=bearer(admin["tokens"]["refresh_token"]))
    assert response.status_code == 401


def test_admin_tokens_carry_the_role(admin):
    assert claims_of(admin["tokens"]["access_token"])["role"] == "admin"


# GET /users


def make_users(add_user, count):
    return [add_user(f"user{index:03d}", password_hash="x") for index in range(count)]


def test_list_users(client, admin, add_user):
    make_users(add_user, 3)
    response = client.get("/users", headers=admin["headers"])
    assert response.status_code == 200
    assert set(response.json) == {"items", "page", "per_page", "total"}
    assert (response.json["page"], response.json["per_page"], response.json["total"]) == (1, 50, 4)
    assert [user["username"] for user in response.json["items"]] == ["root", "user000", "user001", "user002"]
    assert set(response.json["items"][0]) == {"id", "username", "name", "role", "is_active", "created_at", "updated_at"}


def test_pagination(client, admin, add_user):
    make_users(add_user, 6)
    page = client.get("/users?page=2&per_page=3", headers=admin["headers"]).json
    assert [user["username"] for user in page["items"]] == ["user002", "user003", "user004"]
    assert (page["page"], page["per_page"], page["total"]) == (2, 3, 7)
    last = client.get("/users?page=3&per_page=3", headers=admin["headers"]).json
    assert [user["username"] for user in last["items"]] == ["user005"]


def test_a_page_past_the_end_is_empty(client, admin):
    response = client.get("/users?page=99", headers=admin["headers"])
    assert response.status_code == 200
    assert response.json["items"] == [] and response.json["total"] == 1 and response.json["page"] == 99


@pytest.mark.parametrize("per_page", [1, 100])
def test_per_page_bounds_are_allowed(client, admin, per_page):
    assert client.get(f"/users?per_page={per_page}", headers=admin["headers"]).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=1000", "per_page"),
        ("per_page=-1", "per_page"),
        ("per_page=ten", "per_page"),
        ("page=0", "page"),
        ("page=-3", "page"),
        ("page=two", "page"),
        ("page=1.5", "page"),
        ("role=root", "role"),
        ("active=maybe", "active"),
        ("sort=username", "sort"),
    ],
)
def test_bad_query_values_are_400(client, admin, query, field):
    response = client.get(f"/users?{query}", headers=admin["headers"])
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert field in response.json["fields"]


def test_filters(client, admin, add_user):
    add_user("Alice", role="admin")
    add_user("alan", is_active=False)
    add_user("bob")
    add_user("al_x")
    add_user("alpha")

    def names(query):
        return [user["username"] for user in client.get(f"/users?{query}", headers=admin["headers"]).json["items"]]

    assert names("q=AL") == ["Alice", "alan", "al_x", "alpha"]
    assert names("q=al_") == ["al_x"]  # _ is not a wildcard
    assert names("q=%25") == []  # nor is %
    assert names("role=admin") == ["root", "Alice"]
    assert names("active=false") == ["alan"]
    assert names("q=al&active=true&role=user") == ["al_x", "alpha"]
    assert client.get("/users?q=al", headers=admin["headers"]).json["total"] == 4


# GET /users/<id>


def test_show_user(client, admin, alice):
    response = client.get(f"/users/{alice['id']}", headers=admin["headers"])
    assert response.status_code == 200
    assert response.json["username"] == "alice"


@pytest.mark.parametrize("path", ["/users/999", "/users/abc", "/users/-1"])
def test_show_unknown_user(client, admin, path):
    response = client.get(path, headers=admin["headers"])
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


# PATCH /users/<id>


def test_rename_keeps_sessions(client, admin, alice):
    response = client.patch(f"/users/{alice['id']}", json={"name": "Alice A."}, headers=admin["headers"])
    assert response.status_code == 200
    assert response.json["name"] == "Alice A."
    assert client.get("/me", headers=alice["headers"]).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [{"role": "admin"}, {"is_active": False}, {"password": "a fresh new passphrase"}],
    ids=["role", "deactivate", "password"],
)
def test_changes_that_end_the_users_sessions(client, admin, alice, changes):
    response = client.patch(f"/users/{alice['id']}", json=changes, headers=admin["headers"])
    assert response.status_code == 200
    assert client.get("/me", headers=alice["headers"]).json["error"] == "invalid_token"
    refreshed = client.post("/token/refresh", headers=bearer(alice["tokens"]["refresh_token"]))
    assert refreshed.status_code == 401
    assert client.get("/users", headers=admin["headers"]).status_code == 200  # the admin's own session lives


def test_a_promoted_user_logs_in_as_admin(client, admin, alice, login):
    client.patch(f"/users/{alice['id']}", json={"role": "admin"}, headers=admin["headers"])
    tokens = login()
    assert claims_of(tokens["access_token"])["role"] == "admin"
    assert client.get("/users", headers=bearer(tokens["access_token"])).status_code == 200


def test_a_deactivated_user_cannot_log_in_and_can_be_reactivated(client, admin, alice):
    client.patch(f"/users/{alice['id']}", json={"is_active": False}, headers=admin["headers"])
    assert client.post("/token", json={"username": "alice", "password": PASSWORD}).status_code == 401
    client.patch(f"/users/{alice['id']}", json={"is_active": True}, headers=admin["headers"])
    assert client.post("/token", json={"username": "alice", "password": PASSWORD}).status_code == 200


def test_a_password_set_by_an_admin_works(client, admin, alice):
    client.patch(f"/users/{alice['id']}", json={"password": "a fresh new passphrase"}, headers=admin["headers"])
    assert client.post("/token", json={"username": "alice", "password": PASSWORD}).status_code == 401
    assert client.post("/token", json={"username": "alice", "password": "a fresh new passphrase"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "password123"}, "password"),
        ({"password": "alice"}, "password"),
        ({"role": "root"}, "role"),
        ({"is_active": "sometimes"}, "is_active"),
        ({"username": "mallory"}, "username"),
        ({"id": 5}, "id"),
    ],
)
def test_bad_changes_are_400(client, admin, alice, body, field):
    response = client.patch(f"/users/{alice['id']}", json=body, headers=admin["headers"])
    assert response.status_code == 400
    assert field in response.json["fields"]
    assert client.get("/me", headers=alice["headers"]).status_code == 200  # nothing changed, nothing ended


def test_patch_unknown_user(client, admin):
    assert client.patch("/users/999", json={"name": "x"}, headers=admin["headers"]).status_code == 404


# DELETE /users/<id>


def test_delete_user_stops_their_tokens(client, admin, alice, app):
    response = client.delete(f"/users/{alice['id']}", headers=admin["headers"])
    assert response.status_code == 204
    assert client.get("/me", headers=alice["headers"]).status_code == 401
    assert client.post("/token/refresh", headers=bearer(alice["tokens"]["refresh_token"])).status_code == 401
    assert client.get(f"/users/{alice['id']}", headers=admin["headers"]).status_code == 404


def test_delete_unknown_user(client, admin):
    assert client.delete("/users/999", headers=admin["headers"]).status_code == 404


# The last active admin


@pytest.mark.parametrize(
    ("method", "body"),
    [("patch", {"role": "user"}), ("patch", {"is_active": False}), ("delete", None)],
    ids=["demote", "deactivate", "delete"],
)
def test_the_last_admin_stays(client, admin, method, body, app):
    response = getattr(client, method)(f"/users/{admin['id']}", json=body, headers=admin["headers"])
    assert response.status_code == 409
    assert response.json["error"] == "last_admin"
    with app.app_context():
        user = db.session.get(User, admin["id"])
        assert (user.role, user.is_active) == ("admin", True)
    assert client.get("/users", headers=admin["headers"]).status_code == 200


def test_an_inactive_admin_does_not_count(client, admin, add_user):
    add_user("dormant", role="admin", is_active=False)
    response = client.patch(f"/users/{admin['id']}", json={"role": "user"}, headers=admin["headers"])
    assert response.json["error"] == "last_admin"


def test_with_another_admin_one_may_step_down(client, admin, add_user):
    add_user("second", role="admin")
    response = client.patch(f"/users/{admin['id']}", json={"role": "user"}, headers=admin["headers"])
    assert response.status_code == 200
    assert client.get("/users", headers=admin["headers"]).status_code == 401  # their session ended


def test_a_last_admin_may_still_be_renamed(client, admin):
    response = client.patch(f"/users/{admin['id']}", json={"name": "Root", "role": "admin"}, headers=admin["headers"])
    assert response.status_code == 200
    assert client.get("/users", headers=admin["headers"]).status_code == 200


def test_two_admins_demoting_each_other_at_once(app, add_user, login, monkeypatch):
    ids = [add_user("ann", role="admin"), add_user("ben", role="admin")]
    # Hold each transaction open between the last-admin check and its commit,
    # so that the two requests overlap for certain.
    real_end_sessions = users_module.end_sessions
    monkeypatch.setattr(users_module, "end_sessions", lambda **kw: time.sleep(0.3) or real_end_sessions(**kw))
    headers = [bearer(login(name)["access_token"]) for name in ("ann", "ben")]
    barrier = threading.Barrier(2)

    def demote(pair):
        own_headers, other_id = pair
        client = app.test_client()
        barrier.wait()
        return client.patch(f"/users/{other_id}", json={"role": "user"}, headers=own_headers)

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(demote, [(headers[0], ids[1]), (headers[1], ids[0])]))
    assert sorted(response.status_code for response in responses) == [200, 409], [r.json for r in responses]
    with app.app_context():
        admins = db.session.execute(db.select(User).where(User.role == "admin", User.is_active)).scalars().all()
    assert len(admins) == 1


def test_a_huge_page_is_just_past_the_end(client, admin):
    response = client.get("/users?page=99999999999999999999", headers=admin["headers"])
    assert response.status_code == 200
    assert response.json["items"] == []


def test_a_nul_in_the_filter_is_a_400(client, admin):
    response = client.get("/users?q=a%00", headers=admin["headers"])
    assert response.status_code == 400
    assert "q" in response.json["fields"]


def test_a_nul_in_a_name_is_a_400(client, admin, alice):
    response = client.patch(f"/users/{alice['id']}", json={"name": "a\u0000b"}, headers=admin["headers"])
    assert response.status_code == 400
    assert "name" in response.json["fields"]
