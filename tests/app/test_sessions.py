"""Sessions: refresh rotation, reuse detection with its grace window, the races, purging."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import TOKEN_FIELDS, assert_refused, bearer, claims_of, forge, now, sql_statements
from sqlalchemy import func, select, update

from tokenservice.storage.models import LoginSession, User


def test_refresh_gives_new_tokens_of_the_same_session(client, alice, auth):
    old = alice.tokens
    response = auth.refresh(alice.refresh_token)
    assert response.status_code == 200
    assert set(response.json) == TOKEN_FIELDS
    assert response.headers["Cache-Control"] == "no-store"
    new = response.json
    assert new["refresh_token"] != old["refresh_token"]
    access, refreshed = claims_of(new["access_token"]), claims_of(new["refresh_token"])
    assert access["sid"] == refreshed["sid"] == alice.claims["sid"]
    assert access["fresh"] is False  # only a login makes a fresh token
    assert refreshed["jti"] != claims_of(old["refresh_token"])["jti"]
    assert client.get("/me", headers=bearer(new["access_token"])).status_code == 200
    # The access token from before the refresh still works: same live session.
    assert client.get("/me", headers=alice.headers).status_code == 200


def test_refresh_through_the_password_grant_route(client, alice):
    response = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": alice.refresh_token})
    assert response.status_code == 200
    assert claims_of(response.json["refresh_token"])["sid"] == claims_of(alice.refresh_token)["sid"]
    as_json = client.post(
        "/token", json={"grant_type": "refresh_token", "refresh_token": response.json["refresh_token"]}
    )
    assert as_json.status_code == 200


def test_refresh_grant_needs_the_token(client):
    response = client.post("/token", data={"grant_type": "refresh_token"})
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"refresh_token"}


@pytest.mark.parametrize("route", ["header", "grant"])
def test_an_access_token_cannot_refresh(client, alice, auth, route):
    access = alice.access_token
    if route == "header":
        assert_refused(auth.refresh(access))
    else:
        assert_refused(auth.grant(access))


@pytest.mark.parametrize("route", ["header", "grant"])
def test_an_expired_refresh_token(client, alice, auth, route):
    expired = forge(claims_of(alice.refresh_token), iat=now() - 100, nbf=now() - 100, exp=now() - 1)
    if route == "header":
        response = auth.refresh(expired)
    else:
        response = auth.grant(expired)
    assert_refused(response, "token_expired")


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_a_malformed_refresh_token_on_the_grant(client, token, auth):
    assert_refused(auth.grant(token))


def test_the_grant_checks_the_session_like_the_route(client, alice, auth, database):
    """decode_token skips the loaders, so the grant must check the session itself."""
    assert database.execute(update(LoginSession).values(ended_at=func.now())) == 1
    token = alice.refresh_token
    assert_refused(auth.grant(token))
    assert_refused(auth.refresh(token))


@pytest.mark.parametrize("missing", ["sid", "jti", "sub"])
def test_the_grant_refuses_tokens_without_needed_claims(client, alice, missing, auth):
    token = forge(claims_of(alice.refresh_token), **{missing: None})
    assert_refused(auth.grant(token))


def test_the_grant_refuses_a_deactivated_user(client, alice, database, auth):
    assert database.execute(update(User).values(is_active=False)) == 1
    token = alice.refresh_token
    assert_refused(auth.grant(token))


def test_a_retired_token_within_the_window_gets_the_current_refresh_token(client, alice, auth):
    first = auth.refresh(alice.refresh_token).json
    again = auth.refresh(alice.refresh_token)  # the other tab, a moment later
    assert again.status_code == 200
    current, repeated = claims_of(first["refresh_token"]), claims_of(again.json["refresh_token"])
    assert (repeated["jti"], repeated["exp"]) == (current["jti"], current["exp"])  # no second branch
    assert client.get("/me", headers=bearer(again.json["access_token"])).status_code == 200
    # The chain goes on from the current token.
    assert auth.refresh(again.json["refresh_token"]).status_code == 200


def test_a_retired_token_after_the_window_is_theft_and_ends_the_session(client, alice, auth, database):
    stolen = alice.refresh_token
    victim = auth.refresh(stolen).json
    # The window passes.
    eleven_seconds_ago = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 11)
    assert database.execute(update(LoginSession).values(rotated_at=eleven_seconds_ago)) == 1
    assert_refused(auth.refresh(stolen))
    # The whole session has ended: the victim's tokens stop too.
    assert_refused(auth.refresh(victim["refresh_token"]))
    assert_refused(client.get("/me", headers=bearer(victim["access_token"])))
    assert_refused(client.get("/me", headers=alice.headers))


def test_a_token_two_rotations_old_is_theft(client, alice, auth):
    first = auth.refresh(alice.refresh_token).json
    second = auth.refresh(first["refresh_token"]).json
    assert_refused(auth.refresh(alice.refresh_token))
    assert_refused(client.get("/me", headers=bearer(second["access_token"])))


def test_with_no_window_a_retired_token_ends_the_session(make_app, alice, auth):
    client = make_app(JWT_REFRESH_REUSE_WINDOW="0").test_client()
    winner = auth.refresh(alice.refresh_token, client=client).json
    assert_refused(auth.refresh(alice.refresh_token, client=client))
    assert_refused(client.get("/me", headers=bearer(winner["access_token"])))


def test_refreshing_slides_the_session_expiry(alice, auth, database):
    in_a_day = func.now() + func.make_interval(0, 0, 0, 1)
    assert database.execute(update(LoginSession).values(expires_at=in_a_day)) == 1
    refreshed = auth.refresh(alice.refresh_token).json
    exp = claims_of(refreshed["refresh_token"])["exp"]
    assert exp >= now() + 30 * 24 * 3600 - 60
    assert int(database.get(LoginSession, alice.claims["sid"]).expires_at.timestamp()) == exp


def concurrent_refreshes(auth, app, token, count=10):
    """`count` refreshes of `token`, each from its own client, let go at once."""
    barrier = threading.Barrier(count)

    def attempt(_):
        client = app.test_client()
        barrier.wait()
        return auth.refresh(token, client=client)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


def test_ten_simultaneous_refreshes_with_no_window(make_app, alice, auth):
    app = make_app(JWT_REFRESH_REUSE_WINDOW="0")
    responses = concurrent_refreshes(auth, app, alice.refresh_token)
    # The session row is locked while a refresh is judged: one wins and rotates; the
    # nine others then present a retired token outside the (empty) window, which is reuse.
    successes = [r for r in responses if r.status_code == 200]
    refusals = [r for r in responses if r.status_code != 200]
    assert (len(successes), len(refusals)) == (1, 9), [r.status_code for r in responses]
    for refusal in refusals:
        assert_refused(refusal)
    # Reuse ended the session: the winner's tokens stop too.
    [winner] = successes
    client = app.test_client()
    assert_refused(client.get("/me", headers=bearer(winner.json["access_token"])))
    assert_refused(auth.refresh(winner.json["refresh_token"], client=client))


def test_ten_simultaneous_refreshes_within_the_window(app, alice, auth):
    responses = concurrent_refreshes(auth, app, alice.refresh_token)
    assert [r.status_code for r in responses] == [200] * 10
    refresh_claims = [claims_of(r.json["refresh_token"]) for r in responses]
    assert len({(c["jti"], c["exp"]) for c in refresh_claims}) == 1  # one chain, no branches
    client = app.test_client()
    for response in responses:
        assert client.get("/me", headers=bearer(response.json["access_token"])).status_code == 200
    assert auth.refresh(responses[0].json["refresh_token"], client=client).status_code == 200


def test_purge_deletes_only_what_can_no_longer_be_used(auth, database, runner):
    auth.add_user("alice")
    ended, expired, live = (auth.login().claims["sid"] for _ in range(3))
    assert database.execute(update(LoginSession).where(LoginSession.id == ended).values(ended_at=func.now())) == 1
    # Expiring now() is already expired: a session is live while expires_at > now().
    assert database.execute(update(LoginSession).where(LoginSession.id == expired).values(expires_at=func.now())) == 1
    result = runner.invoke(args=["sessions", "purge"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 " in result.output
    remaining = database.scalars(select(LoginSession.id))
    assert [str(sid) for sid in remaining] == [live]
    assert "Deleted 0 " in runner.invoke(args=["sessions", "purge"]).output  # safe to run again


def test_a_guarded_request_makes_one_query(client, alice, app):
    """The per-request session check is the hot path: one indexed query."""
    with sql_statements(app) as statements:
        assert client.get("/protected", headers=alice.headers).status_code == 200
    assert len(statements) == 1, statements
    assert "live_session_user" in statements[0]


def test_the_purge_fetches_nothing_back(app, runner):
    """A million ids read back (RETURNING) kept the purge's transaction open for seconds."""
    with sql_statements(app) as statements:
        assert runner.invoke(args=["sessions", "purge"]).exit_code == 0
    deletes = [statement for statement in statements if statement.lstrip().upper().startswith("DELETE")]
    assert len(deletes) == 3  # sessions, client tokens, failed logins
    assert not any("RETURNING" in statement.upper() for statement in deletes)
