"""One JSON error shape for everything, Flask's own errors included."""

import io

import pytest
from flask_jwt_extended import create_access_token
from helpers import PASSWORD, assert_error, bearer
from sqlalchemy.exc import IntegrityError

# An address where nothing listens: PostgreSQL as seen during an outage.
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/test?connect_timeout=2"


def test_unknown_route(client):
    assert_error(client.get("/nowhere"), 404, "not_found")


def test_method_not_allowed_keeps_allow(client):
    response = client.delete("/token")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_a_large_body_is_refused_before_any_view_runs(client):
    body = '{"username": "' + "a" * (64 * 1024) + '"}'
    assert_error(client.post("/users", data=body, content_type="application/json"), 413, "payload_too_large")


def test_a_large_body_on_a_guarded_route_is_refused_before_the_token_is_checked(client):
    response = client.patch("/me", data="x" * (64 * 1024 + 1), content_type="application/json")
    assert_error(response, 413, "payload_too_large")


def test_a_body_of_exactly_64_kib_is_read(client):
    padding = 64 * 1024 - len('{"username": "", "password": "x"}')
    body = '{"username": "' + "a" * padding + '", "password": "x"}'
    assert len(body) == 64 * 1024
    response = client.post("/users", data=body, content_type="application/json")
    assert_error(response, 400, "invalid_request")


def test_an_unexpected_error_is_a_500_without_details(make_app):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)


def test_an_unexpected_conflict_is_a_409_without_sql(make_app):
    app = make_app()

    @app.get("/conflict")
    def conflict():
        raise IntegrityError("INSERT INTO secrets VALUES (%(x)s)", {"x": "hunter2"}, Exception("duplicate"))

    response = app.test_client().get("/conflict")
    assert_error(response, 409, "conflict")
    assert "hunter2" not in response.get_data(as_text=True)


@pytest.fixture
def outage_app(make_app):
    """The app while PostgreSQL cannot be reached."""
    return make_app(DATABASE_URL=UNREACHABLE)


def test_health_while_the_database_is_down(outage_app):
    response = outage_app.test_client().get("/health")
    assert_error(response, 503, "service_unavailable")
    assert response.json["status"] == "degraded"
    assert response.json["database"] == "unavailable"
    assert response.headers["Retry-After"] == "5"


def test_health(client):
    assert client.get("/health").json == {"status": "ok", "database": "ok"}


def test_a_valid_token_during_an_outage_is_a_503_not_a_401(outage_app):
    with outage_app.app_context():
        token = create_access_token("1", additional_claims={"sid": "00000000-0000-0000-0000-000000000001"})
    response = outage_app.test_client().get("/me", headers=bearer(token))
    assert_error(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("path", "body"),
    [("/token", {"username": "alice", "password": PASSWORD}), ("/users", {"username": "alice", "password": PASSWORD})],
)
def test_writes_during_an_outage_are_a_503(outage_app, path, body):
    assert_error(outage_app.test_client().post(path, json=body), 503, "service_unavailable")


def test_a_large_chunked_body_is_refused_when_read(client):
    body = ('{"username": "' + "a" * (64 * 1024) + '"}').encode()
    response = client.post(
        "/users",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
    )
    assert_error(response, 413, "payload_too_large")


def test_a_small_chunked_body_is_read_whole(client, auth):
    auth.add_user("alice")
    body = ('{"username": "alice", "password": "' + PASSWORD + '"}').encode()
    response = client.post(
        "/token",
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200
