"""The security headers on every response, and the demo page's CSP."""

import pytest
from flask.testing import FlaskClient


def fetch(client: FlaskClient, path: str):
    """GET `path`, reading and closing the (possibly streamed file) response."""
    response = client.get(path)
    response.get_data()
    response.close()
    return response


@pytest.mark.parametrize("path", ["/health", "/nowhere", "/me", "/", "/app.js"])
def test_every_response_has_nosniff_and_no_referrer(client, path):
    response = fetch(client, path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_production_sends_hsts(client):
    assert client.get("/health").headers["Strict-Transport-Security"].startswith("max-age=")


def test_development_does_not_send_hsts(make_app):
    app = make_app(APP_ENV="development")
    assert "Strict-Transport-Security" not in app.test_client().get("/health").headers


def test_the_demo_page_has_its_exact_csp(client):
    response = fetch(client, "/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def test_the_demo_files_are_served(client):
    assert fetch(client, "/app.js").mimetype in ("text/javascript", "application/javascript")
    assert fetch(client, "/app.css").mimetype == "text/css"
    assert fetch(client, "/static/demo/index.html").status_code == 404  # never without its CSP


def test_user_data_is_not_cached(client, alice):
    assert client.get("/me", headers=alice.headers).headers["Cache-Control"] == "no-store"


def test_a_204_has_no_content_type(client, alice):
    response = client.post("/logout", headers=alice.headers)
    assert response.status_code == 204
    assert "Content-Type" not in response.headers
