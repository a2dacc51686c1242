"""The OpenAPI document: complete, served, and true to the running app (schemathesis)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Served beside the API, not part of it.
UNDOCUMENTED = {"/", "/<any('app.js', 'app.css'):filename>", "/docs", "/docs/initializer.js", "/openapi.json"}


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json


def test_every_route_is_documented(app, document):
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"  # shared by the path's operations, not an operation
    }
    served = {
        (
            rule.rule.replace("<int:user_id>", "{user_id}")
            .replace("<uuid:session_id>", "{session_id}")
            .replace("<client_id>", "{client_id}"),
            method,
        )
        for rule in app.url_map.iter_rules()
        if rule.rule not in UNDOCUMENTED and not rule.rule.startswith("/docs/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented


def test_security_schemes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/token"
    assert {"bearerAuth": []} in document["paths"]["/me"]["get"]["security"]
    assert "security" not in document["paths"]["/health"]["get"]


def test_token_takes_json_or_a_form(document):
    content = document["paths"]["/token"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}


def test_errors_are_documented_with_the_error_schema(document):
    error_ref = {"$ref": "#/components/schemas/Error"}
    responses = document["components"]["responses"]
    assert set(responses) == {
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "REQUEST_TIMEOUT",
        "CONFLICT",
        "REQUEST_ENTITY_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "TOO_MANY_REQUESTS",
        "INTERNAL_SERVER_ERROR",
        "SERVICE_UNAVAILABLE",
    }
    for name, response in responses.items():
        assert response["content"]["application/json"]["schema"] == error_ref, name
    guarded = document["paths"]["/users/{user_id}"]["delete"]["responses"]
    assert set(guarded) == {"204", "401", "403", "404", "408", "409", "413", "500", "503"}


def test_docs_page_is_served_from_the_service(client):
    response = client.get("/docs")
    html = response.get_data(as_text=True)
    response.close()
    assert response.status_code == 200
    assert "/docs/swagger-ui-bundle.js" in html and "http" not in html.replace("http-equiv", "")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp and "img-src 'self' data:" in csp
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/initializer.js"):
        asset_response = client.get(asset)
        assert asset_response.status_code == 200, asset
        asset_response.close()


def operations(app):
    for result in schemathesis.openapi.from_wsgi("/openapi.json", app).get_all_operations():
        yield result.ok()


def fuzz(operation, headers_for_case, max_examples=30):
    """Run schemathesis' generated cases for one operation through the checks."""

    @given(case=operation.as_strategy())
    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        case.call_and_validate(headers=headers_for_case(), checks=CHECKS)

    run()


def test_the_app_keeps_its_documented_contract(app, admin):
    """Fuzz every route but /logout as an admin (logging out would end the fuzzer's session)."""
    fuzzed = []
    for operation in operations(app):
        if operation.path == "/logout":
            continue
        fuzz(operation, lambda: admin.headers)
        fuzzed.append(operation.label)
    assert sorted(fuzzed) == [
        "DELETE /clients/{client_id}",
        "DELETE /me/mfa/totp",
        "DELETE /me/sessions/{session_id}",
        "DELETE /users/{user_id}",
        "DELETE /users/{user_id}/mfa",
        "DELETE /users/{user_id}/sessions/{session_id}",
        "GET /.well-known/jwks.json",
        "GET /.well-known/oauth-authorization-server",
        "GET /.well-known/openid-configuration",
        "GET /clients",
        "GET /health",
        "GET /me",
        "GET /me/sessions",
        "GET /protected",
        "GET /users",
        "GET /users/{user_id}",
        "GET /users/{user_id}/sessions",
        "PATCH /clients/{client_id}",
        "PATCH /me",
        "PATCH /users/{user_id}",
        "POST /clients",
        "POST /email/verify",
        "POST /introspect",
        "POST /me/email/verify",
        "POST /me/mfa/recovery-codes",
        "POST /me/mfa/totp",
        "POST /me/mfa/totp/confirm",
        "POST /me/password",
        "POST /password/forgot",
        "POST /password/reset",
        "POST /revoke",
        "POST /signin-alerts/end-session",
        "POST /token",
        "POST /token/refresh",
        "POST /users",
    ]


def test_logout_keeps_its_documented_contract(app, auth):
    """/logout, with a fresh login for each case."""
    auth.add_user("fuzzer")
    (logout,) = [operation for operation in operations(app) if operation.path == "/logout"]
    fuzz(logout, lambda: auth.login("fuzzer").headers, max_examples=15)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "fields"),
    [
        ("get", "/nowhere", {}, 404, None),  # Flask's own
        ("delete", "/token", {}, 405, None),  # Flask's own
        ("get", "/me", {}, 401, None),  # Flask-JWT-Extended's loader
        ("get", "/me", {"headers": {"Authorization": "Bearer x.y.z"}}, 401, None),
        ("post", "/users", {"data": "{", "content_type": "application/json"}, 400, {"body"}),  # webargs
        ("post", "/users", {"data": "x" * 70000, "content_type": "application/json"}, 413, None),
        ("post", "/users", {"data": "x", "content_type": "text/plain"}, 415, None),
    ],
)
def test_every_error_matches_the_documented_schema(client, document, method, path, kwargs, status, fields):
    """`fields`: the fields a validation error names (None: not a validation error, no `fields`)."""
    schema = document["components"]["schemas"]["Error"]
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    body = response.json
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])
    assert all(isinstance(body[name], str) for name in ("error", "message"))
    if fields is None:
        assert "fields" not in body, body
    else:
        assert set(body["fields"]) == fields
        assert all(isinstance(problem, str) for problem in body["fields"].values())


def test_closed_registration_is_not_offered_without_a_token(make_app):
    document = make_app(ALLOW_REGISTRATION="false").test_client().get("/openapi.json").json
    assert document["paths"]["/users"]["post"]["security"] == [{"bearerAuth": []}, {"oauth2": []}]


def test_the_jwks_keeps_its_documented_contract_under_es256(make_app):
    from tokenservice.tokens.key_pairs import generate

    private, public, _ = generate("ES256")
    app = make_app(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY=private.decode(), JWT_PUBLIC_KEY=public.decode())
    (jwks,) = [operation for operation in operations(app) if operation.path == "/.well-known/jwks.json"]
    fuzz(jwks, dict, max_examples=5)
