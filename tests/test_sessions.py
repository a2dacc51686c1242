"""Sessions: refresh rotation, reuse detection with its grace window, the races, purging."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import bearer, claims_of, forge, now
from sqlalchemy import func, update

from tokenservice.extensions import db
from tokenservice.models import LoginSession

REFRESHED_FIELDS = {"access_token", "token_type", "expires_in", "refresh_token", "token", "user_id"}


def refresh(client, refresh_token):
    return client.post("/token/refresh", headers=bearer(refresh_token))


def assert_refused(response, error="invalid_token"):
    assert response.status_code == 401, response.json
    assert response.json["error"] == error
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


def session_row(app, sid):
    with app.app_context():
        return db.session.get(LoginSession, sid)


def test_refresh_gives_new_tokens_of_the_same_session(client, alice):
    old = alice["tokens"]
    response = refresh(client, old["refresh_token"])
    assert response.status_code == 200
    assert set(response.json) == REFRESHED_FIELDS
    assert response.headers["Cache-Control"] == "no-store"
    new = response.json
    assert new["refresh_token"] != old["refresh_token"]
    access, refreshed = claims_of(new["access_token"]), claims_of(new["refresh_token"])
    assert access["sid"] == refreshed["sid"] == claims_of(old["access_token"])["sid"]
    assert access["fresh"] is False  # only a login makes a fresh token
    assert refreshed["jti"] != claims_of(old["refresh_token"])["jti"]
    assert client.get("/me", headers=bearer(new["access_token"])).status_code == 200
    # The access token from before the refresh still works: same live session.
    assert client.get("/me", headers=alice["headers"]).status_code == 200


def test_refresh_through_the_password_grant_route(client, alice):
    response = client.post(
        "/token", data={"grant_type": "refresh_token", "refresh_token": alice["tokens"]["refresh_token"]}
    )
    assert response.status_code == 200
    assert claims_of(response.json["refresh_token"])["sid"] == claims_of(alice["tokens"]["refresh_token"])["sid"]
    as_json = client.post(
        "/token", json={"grant_type": "refresh_token", "refresh_token": response.json["refresh_token"]}
    )
    assert as_json.status_code == 200


def test_refresh_grant_needs_the_token(client):
    response = client.post("/token", data={"grant_type": "refresh_token"})
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"refresh_token"}


@pytest.mark.parametrize("route", ["header", "grant"])
def test_an_access_token_cannot_refresh(client, alice, route):
    access = alice["tokens"]["access_token"]
    if route == "header":
        assert_refused(refresh(client, access))
    else:
        assert_refused(client.post("/token", json={"grant_type": "refresh_token", "refresh_token": access}))


@pytest.mark.parametrize("route", ["header", "grant"])
def test_an_expired_refresh_token(client, alice, route):
    expired = forge(claims_of(alice["tokens"]["refresh_token"]), iat=now() - 100, nbf=now() - 100, exp=now() - 1)
    if route == "header":
        response = refresh(client, expired)
    else:
        response = client.post("/token", json={"grant_type": "refresh_token", "refresh_token": expired})
    assert_refused(response, error="token_expired")


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_a_malformed_refresh_token_on_the_grant(client, token):
    assert_refused(client.post("/token", json={"grant_type": "refresh_token", "refresh_token": token}))


def test_the_grant_checks_the_session_like_the_route(client, alice, app):
    """decode_token skips the loaders, so the grant must check the session itself."""
    with app.app_context():
        db.session.execute(update(LoginSession).values(ended_at=func.now()))
        db.session.commit()
    token = alice["tokens"]["refresh_token"]
    assert_refused(client.post("/token", json={"grant_type": "refresh_token", "refresh_token": token}))
    assert_refused(refresh(client, token))


@pytest.mark.parametrize("missing", ["sid", "jti", "sub"])
def test_the_grant_refuses_tokens_without_needed_claims(client, alice, missing):
    token = forge(claims_of(alice["tokens"]["refresh_token"]), **{missing: None})
    assert_refused(client.post("/token", json={"grant_type": "refresh_token", "refresh_token": token}))


def test_the_grant_refuses_a_deactivated_user(client, alice, app):
    from tokenservice.models import User

    with app.app_context():
        db.session.execute(update(User).values(is_active=False))
        db.session.commit()
    token = alice["tokens"]["refresh_token"]
    assert_refused(client.post("/token", json={"grant_type": "refresh_token", "refresh_token": token}))


def test_a_retired_token_within_the_window_gets_the_current_refresh_token(client, alice):
    first = refresh(client, alice["tokens"]["refresh_token"]).json
    again = refresh(client, alice["tokens"]["refresh_token"])  # the other tab, a moment later
    assert again.status_code == 200
    current, repeated = claims_of(first["refresh_token"]), claims_of(again.json["refresh_token"])
    assert (repeated["jti"], repeated["exp"]) == (current["jti"], current["exp"])  # no second branch
    assert client.get("/me", headers=bearer(again.json["access_token"])).status_code == 200
    # The chain goes on from the current token.
    assert refresh(client, again.json["refresh_token"]).status_code == 200


def test_a_retired_token_after_the_window_is_theft_and_ends_the_session(client, alice, app):
    stolen = alice["tokens"]["refresh_token"]
    victim = refresh(client, stolen).json
    with app.app_context():  # the window passes
        db.session.execute(
            update(LoginSession).values(rotated_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 11))
        )
        db.session.commit()
    assert_refused(refresh(client, stolen))
    # The whole session has ended: the victim's tokens stop too.
    assert_refused(refresh(client, victim["refresh_token"]))
    assert_refused(client.get("/me", headers=bearer(victim["access_token"])))
    assert_refused(client.get("/me", headers=alice["headers"]))


def test_a_token_two_rotations_old_is_theft(client, alice):
    first = refresh(client, alice["tokens"]["refresh_token"]).json
    second = refresh(client, first["refresh_token"]).json
    assert_refused(refresh(client, alice["tokens"]["refresh_token"]))
    assert_refused(client.get("/me", headers=bearer(second["access_token"])))


def test_with_no_window_a_retired_token_ends_the_session(make_app, alice):
    client = make_app(JWT_REFRESH_REUSE_WINDOW="0").test_client()
    winner = refresh(client, alice["tokens"]["refresh_token"]).json
    assert_refused(refresh(client, alice["tokens"]["refresh_token"]))
    assert_refused(client.get("/me", headers=bearer(winner["access_token"])))


def test_refreshing_slides_the_session_expiry(client, alice, app):
    sid = claims_of(alice["tokens"]["access_token"])["sid"]
    with app.app_context():
        db.session.execute(update(LoginSession).values(expires_at=func.now() + func.make_interval(0, 0, 0, 1)))
        db.session.commit()
    refreshed = refresh(client, alice["tokens"]["refresh_token"]).json
    exp = claims_of(refreshed["refresh_token"])["exp"]
    assert exp >= now() + 30 * 24 * 3600 - 60
    assert int(session_row(app, sid).expires_at.timestamp()) == exp


def concurrent_refreshes(app, token, count=10):
    barrier = threading.Barrier(count)

    def attempt(_):
        client = app.test_client()
        barrier.wait()
        return client.post("/token/refresh", headers=bearer(token))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


def test_ten_simultaneous_refreshes_with_no_window(make_app, alice):
    app = make_app(JWT_REFRESH_REUSE_WINDOW="0")
    responses = concurrent_refreshes(app, alice["tokens"]["refresh_token"])
    successes = [r for r in responses if r.status_code == 200]
    assert len(successes) <= 1
    assert all(r.json["error"] == "invalid_token" for r in responses if r.status_code != 200)
    # Reuse ended the session: the winner's tokens stop too.
    client = app.test_client()
    for success in successes:
        assert_refused(client.get("/me", headers=bearer(success.json["access_token"])))
        assert_refused(refresh(client, success.json["refresh_token"]))


def test_ten_simultaneous_refreshes_within_the_window(app, alice):
    responses = concurrent_refreshes(app, alice["tokens"]["refresh_token"])
    assert [r.status_code for r in responses] == [200] * 10
    refresh_claims = [claims_of(r.json["refresh_token"]) for r in responses]
    assert len({(c["jti"], c["exp"]) for c in refresh_claims}) == 1  # one chain, no branches
    client = app.test_client()
    for response in responses:
        assert client.get("/me", headers=bearer(response.json["access_token"])).status_code == 200
    assert refresh(client, responses[0].json["refresh_token"]).status_code == 200


def test_purge_deletes_only_what_can_no_longer_be_used(client, app, add_user, login, runner):
    add_user("alice")
    ended, expired, live = (claims_of(login()["access_token"])["sid"] for _ in range(3))
    with app.app_context():
        db.session.execute(update(LoginSession).where(LoginSession.id == ended).values(ended_at=func.now()))
        db.session.execute(update(LoginSession).where(LoginSession.id == expired).values(expires_at=func.now()))
        db.session.commit()
    time.sleep(0.01)
    result = runner.invoke(args=["sessions", "purge"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2" in result.output
    with app.app_context():
        remaining = db.session.execute(db.select(LoginSession.id)).scalars().all()
    assert [str(sid) for sid in remaining] == [live]
    assert "Deleted 0" in runner.invoke(args=["sessions", "purge"]).output  # safe to run again


def test_a_guarded_request_makes_one_query(client, alice, app):
    """The per-request session check is the hot path: one indexed query."""
    from sqlalchemy import event

    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get("/protected", headers=alice["headers"]).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(statements) == 1, statements
    assert "live_session_user" in statements[0]
