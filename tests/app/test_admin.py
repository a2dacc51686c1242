"""The admin endpoints: GET/PATCH/DELETE /users..., the admin guard, and the last-admin rule."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import USER_FIELDS, assert_error, assert_forbidden, assert_refused, bearer, forge
from sqlalchemy import select, update

from tokenservice.rules import users as users_module
from tokenservice.storage.models import User

ADMIN_ROUTES = [
    ("get", "/users", None),
    ("get", "/users/1", None),
    ("patch", "/users/1", {"name": "x"}),
    ("delete", "/users/1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_an_ordinary_user_gets_403_everywhere_admin_only(client, alice, method, path, body):
    assert_forbidden(getattr(client, method)(path, json=body, headers=alice.headers))


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_no_token_is_401_on_admin_routes(client, method, path, body):
    assert_refused(getattr(client, method)(path, json=body), "authorization_required")


def test_a_forged_role_claim_is_not_enough(client, alice):
    """The role is read from the live user, not from the token."""
    forged = forge(alice.claims, role="admin")
    assert_forbidden(client.get("/users", headers=bearer(forged)))


def test_a_demotion_takes_effect_at_once(client, admin, database):
    assert database.execute(update(User).values(role="user")) == 1
    # The session is still live (set directly, not through the API), the claim still says admin:
    assert admin.claims["role"] == "admin"
    assert_forbidden(client.get("/users", headers=admin.headers))


def test_a_refresh_token_is_not_an_admins_access_token(client, admin):
    assert_refused(client.get("/users", headers=admin.refresh_headers))


def test_admin_tokens_carry_the_role(admin):
    assert admin.claims["role"] == "admin"


# GET /users


def make_users(auth, count):
    return [auth.add_user(f"user{index:03d}", password_hash="x") for index in range(count)]


def test_list_users(client, admin, auth):
    make_users(auth, 3)
    response = client.get("/users", headers=admin.headers)
    assert response.status_code == 200
    assert set(response.json) == {"items", "page", "per_page", "total"}
    assert (response.json["page"], response.json["per_page"], response.json["total"]) == (1, 50, 4)
    assert [user["username"] for user in response.json["items"]] == ["root", "user000", "user001", "user002"]
    assert set(response.json["items"][0]) == USER_FIELDS


def test_pagination(client, admin, auth):
    make_users(auth, 6)
    page = client.get("/users?page=2&per_page=3", headers=admin.headers).json
    assert [user["username"] for user in page["items"]] == ["user002", "user003", "user004"]
    assert (page["page"], page["per_page"], page["total"]) == (2, 3, 7)
    last = client.get("/users?page=3&per_page=3", headers=admin.headers).json
    assert [user["username"] for user in last["items"]] == ["user005"]


def test_a_page_past_the_end_is_empty(client, admin):
    response = client.get("/users?page=99", headers=admin.headers)
    assert response.status_code == 200
    assert response.json["items"] == [] and response.json["total"] == 1 and response.json["page"] == 99


@pytest.mark.parametrize("per_page", [1, 100])
def test_per_page_bounds_are_allowed(client, admin, per_page):
    assert client.get(f"/users?per_page={per_page}", headers=admin.headers).status_code == 200


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
    response = client.get(f"/users?{query}", headers=admin.headers)
    assert_error(response, 400, "invalid_request")
    assert field in response.json["fields"]


def test_filters(client, admin, auth):
    auth.add_user("Alice", role="admin")
    auth.add_user("alan", is_active=False)
    auth.add_user("bob")
    auth.add_user("al_x")
    auth.add_user("alpha")

    def names(query):
        return [user["username"] for user in client.get(f"/users?{query}", headers=admin.headers).json["items"]]

    assert names("q=AL") == ["Alice", "alan", "al_x", "alpha"]
    assert names("q=al_") == ["al_x"]  # _ is not a wildcard
    assert names("q=%25") == []  # nor is %
    assert names("role=admin") == ["root", "Alice"]
    assert names("active=false") == ["alan"]
    assert names("q=al&active=true&role=user") == ["al_x", "alpha"]
    assert client.get("/users?q=al", headers=admin.headers).json["total"] == 4


# GET /users/<id>


def test_show_user(client, admin, alice):
    response = client.get(f"/users/{alice.id}", headers=admin.headers)
    assert response.status_code == 200
    assert response.json["username"] == "alice"


@pytest.mark.parametrize("path", ["/users/999", "/users/abc", "/users/-1"])
def test_show_unknown_user(client, admin, path):
    assert_error(client.get(path, headers=admin.headers), 404, "not_found")


# PATCH /users/<id>


def test_rename_keeps_sessions(client, admin, alice):
    response = client.patch(f"/users/{alice.id}", json={"name": "Alice A."}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json["name"] == "Alice A."
    assert client.get("/me", headers=alice.headers).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [{"role": "admin"}, {"is_active": False}, {"password": "a fresh new passphrase"}],
    ids=["role", "deactivate", "password"],
)
def test_changes_that_end_the_users_sessions(client, auth, admin, alice, changes):
    response = client.patch(f"/users/{alice.id}", json=changes, headers=admin.headers)
    assert response.status_code == 200
    assert client.get("/me", headers=alice.headers).json["error"] == "invalid_token"
    assert auth.refresh(alice.refresh_token).status_code == 401
    assert client.get("/users", headers=admin.headers).status_code == 200  # the admin's own session lives


def test_a_promoted_user_logs_in_as_admin(client, auth, admin, alice):
    assert client.patch(f"/users/{alice.id}", json={"role": "admin"}, headers=admin.headers).status_code == 200
    promoted = auth.login("alice")
    assert promoted.claims["role"] == "admin"
    assert client.get("/users", headers=promoted.headers).status_code == 200


def test_a_deactivated_user_cannot_log_in_and_can_be_reactivated(client, auth, admin, alice):
    assert client.patch(f"/users/{alice.id}", json={"is_active": False}, headers=admin.headers).status_code == 200
    assert auth.token("alice").status_code == 401
    assert client.patch(f"/users/{alice.id}", json={"is_active": True}, headers=admin.headers).status_code == 200
    assert auth.token("alice").status_code == 200


def test_a_password_set_by_an_admin_works(client, auth, admin, alice):
    changed = client.patch(f"/users/{alice.id}", json={"password": "a fresh new passphrase"}, headers=admin.headers)
    assert changed.status_code == 200
    assert auth.token("alice").status_code == 401
    assert auth.token("alice", "a fresh new passphrase").status_code == 200


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
    response = client.patch(f"/users/{alice.id}", json=body, headers=admin.headers)
    assert_error(response, 400, "invalid_request")
    assert field in response.json["fields"]
    assert client.get("/me", headers=alice.headers).status_code == 200  # nothing changed, nothing ended


def test_patch_unknown_user(client, admin):
    assert_error(client.patch("/users/999", json={"name": "x"}, headers=admin.headers), 404, "not_found")


# DELETE /users/<id>


def test_delete_user_stops_their_tokens(client, auth, admin, alice):
    response = client.delete(f"/users/{alice.id}", headers=admin.headers)
    assert response.status_code == 204
    assert client.get("/me", headers=alice.headers).status_code == 401
    assert auth.refresh(alice.refresh_token).status_code == 401
    assert client.get(f"/users/{alice.id}", headers=admin.headers).status_code == 404


def test_delete_unknown_user(client, admin):
    assert_error(client.delete("/users/999", headers=admin.headers), 404, "not_found")


# The last active admin


@pytest.mark.parametrize(
    ("method", "body"),
    [("patch", {"role": "user"}), ("patch", {"is_active": False}), ("delete", None)],
    ids=["demote", "deactivate", "delete"],
)
def test_the_last_admin_stays(client, database, admin, method, body):
    response = getattr(client, method)(f"/users/{admin.id}", json=body, headers=admin.headers)
    assert_error(response, 409, "last_admin")
    user = database.get(User, admin.id)
    assert (user.role, user.is_active) == ("admin", True)
    assert client.get("/users", headers=admin.headers).status_code == 200


def test_an_inactive_admin_does_not_count(client, auth, admin):
    auth.add_user("dormant", role="admin", is_active=False)
    response = client.patch(f"/users/{admin.id}", json={"role": "user"}, headers=admin.headers)
    assert_error(response, 409, "last_admin")


def test_with_another_admin_one_may_step_down(client, auth, admin):
    auth.add_user("second", role="admin")
    response = client.patch(f"/users/{admin.id}", json={"role": "user"}, headers=admin.headers)
    assert response.status_code == 200
    assert_refused(client.get("/users", headers=admin.headers))  # their session ended


def test_a_last_admin_may_still_be_renamed(client, admin):
    response = client.patch(f"/users/{admin.id}", json={"name": "Root", "role": "admin"}, headers=admin.headers)
    assert response.status_code == 200
    assert client.get("/users", headers=admin.headers).status_code == 200


# Another connection of the test database waiting for a lock (as in Database.wait_for_a_lock_waiter).
def test_two_admins_demoting_each_other_at_once(app, auth, database, monkeypatch):
    ann, ben = auth.add_user("ann", role="admin"), auth.add_user("ben", role="admin")
    headers = {ann: auth.login("ann").headers, ben: auth.login("ben").headers}
    # end_sessions runs after the last-admin check, while the admins' rows are
    # locked: each demotion says when it gets there, then holds its
    # transaction open until released.
    arrived = {ann: threading.Event(), ben: threading.Event()}  # by the demoted admin
    release = threading.Event()
    real_end_sessions = users_module.end_sessions

    def end_sessions(*, user_id, **kwargs):
        arrived[user_id].set()
        release.wait(timeout=10)
        return real_end_sessions(user_id=user_id, **kwargs)

    monkeypatch.setattr(users_module, "end_sessions", end_sessions)

    def demote(by, whom):
        return app.test_client().patch(f"/users/{whom}", json={"role": "user"}, headers=headers[by])

    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            first = pool.submit(demote, ann, ben)
            assert arrived[ben].wait(timeout=10), "the first demotion never got past the last-admin check"
            second = pool.submit(demote, ben, ann)
            # With the lock, the second waits for the first's row locks; without
            # it, the second gets past the check as well.
            database.wait_for_a_lock_waiter(until=arrived[ann])
        finally:
            release.set()
        responses = [first.result(timeout=10), second.result(timeout=10)]

    assert [response.status_code for response in responses] == [200, 409], [r.json for r in responses]
    assert_error(responses[1], 409, "last_admin")
    assert database.scalars(select(User.username).where(User.role == "admin", User.is_active)) == ["ann"]


def test_a_huge_page_is_just_past_the_end(client, admin):
    response = client.get("/users?page=99999999999999999999", headers=admin.headers)
    assert response.status_code == 200
    assert response.json["items"] == []


def test_a_nul_in_the_filter_is_a_400(client, admin):
    response = client.get("/users?q=a%00", headers=admin.headers)
    assert response.status_code == 400
    assert "q" in response.json["fields"]


def test_a_nul_in_a_name_is_a_400(client, admin, alice):
    response = client.patch(f"/users/{alice.id}", json={"name": "a\u0000b"}, headers=admin.headers)
    assert response.status_code == 400
    assert "name" in response.json["fields"]
