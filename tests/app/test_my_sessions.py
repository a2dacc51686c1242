"""Each user's view of their sessions: where they are signed in, and ending exactly one of them."""

import uuid

from helpers import assert_error, assert_refused, bearer


def sessions(client, login) -> list[dict]:
    response = client.get("/me/sessions", headers=login.headers)
    assert response.status_code == 200
    return response.json["items"]


def log_in_as(auth, user_agent):
    return auth.login("alice", headers={"User-Agent": user_agent})


def test_two_sign_ins_listed_with_their_user_agents_the_current_one_marked(client, auth):
    auth.add_user("alice")
    phone = log_in_as(auth, "Phone/1.0")
    laptop = log_in_as(auth, "Laptop/2.0")
    items = sessions(client, laptop)
    assert [item["user_agent"] for item in items] == ["Laptop/2.0", "Phone/1.0"]  # the most recently used first
    assert [item["current"] for item in items] == [True, False]
    assert {item["id"] for item in items} == {laptop.claims["sid"], phone.claims["sid"]}
    assert all(item["ip"] == "127.0.0.1" for item in items)
    assert set(items[0]) == {"id", "created_at", "last_used_at", "ip", "user_agent", "current"}


def test_ending_one_sign_in_stops_its_tokens_and_only_its(client, auth):
    auth.add_user("alice")
    phone, laptop = log_in_as(auth, "Phone/1.0"), log_in_as(auth, "Laptop/2.0")
    assert client.delete(f"/me/sessions/{phone.claims['sid']}", headers=laptop.headers).status_code == 204
    assert_refused(client.get("/me", headers=phone.headers))
    assert auth.refresh(phone.refresh_token).status_code == 401
    assert client.get("/me", headers=laptop.headers).status_code == 200
    assert [item["id"] for item in sessions(client, laptop)] == [laptop.claims["sid"]]
    # Ended already: nothing to end.
    assert_error(client.delete(f"/me/sessions/{phone.claims['sid']}", headers=laptop.headers), 404, "not_found")


def test_another_users_session_is_a_404_and_stays_live(client, auth):
    auth.add_user("alice")
    auth.add_user("bob")
    alice, bob = auth.login("alice"), auth.login("bob")
    response = client.delete(f"/me/sessions/{bob.claims['sid']}", headers=alice.headers)
    assert_error(response, 404, "not_found")
    assert client.get("/me", headers=bob.headers).status_code == 200
    assert_error(client.delete(f"/me/sessions/{uuid.uuid4()}", headers=alice.headers), 404, "not_found")
    assert client.delete("/me/sessions/not-a-uuid", headers=alice.headers).status_code == 404


def test_ending_the_current_session_is_a_logout(client, auth):
    auth.add_user("alice")
    login = auth.login("alice")
    assert client.delete(f"/me/sessions/{login.claims['sid']}", headers=login.headers).status_code == 204
    assert_refused(client.get("/me", headers=login.headers))


def test_a_refresh_is_a_use(client, auth):
    auth.add_user("alice")
    first = log_in_as(auth, "Old/1.0")
    log_in_as(auth, "Other/1.0")
    refreshed = client.post("/token/refresh", headers={**bearer(first.refresh_token), "User-Agent": "New/2.0"})
    assert refreshed.status_code == 200
    items = sessions(client, first)
    assert items[0]["user_agent"] == "New/2.0" and items[0]["id"] == first.claims["sid"]
    assert items[0]["last_used_at"] > items[1]["last_used_at"]


def test_the_user_agent_is_bounded_and_printable(client, auth):
    auth.add_user("alice")
    login = log_in_as(auth, "Evil\x07Agent " + "x" * 500)
    (item,) = sessions(client, login)
    assert item["user_agent"] == ("Evil?Agent " + "x" * 500)[:200]


def test_an_admin_sees_and_ends_a_users_sessions(client, auth, admin):
    user_id = auth.add_user("alice")
    alice = log_in_as(auth, "Phone/1.0")
    response = client.get(f"/users/{user_id}/sessions", headers=admin.headers)
    assert response.status_code == 200
    assert [(item["id"], item["current"]) for item in response.json["items"]] == [(alice.claims["sid"], False)]
    assert client.delete(f"/users/{user_id}/sessions/{alice.claims['sid']}", headers=admin.headers).status_code == 204
    assert_refused(client.get("/me", headers=alice.headers))
    assert_error(client.get("/users/999/sessions", headers=admin.headers), 404, "not_found")
    assert client.get(f"/users/{user_id}/sessions", headers=alice.headers).status_code == 401  # ended
