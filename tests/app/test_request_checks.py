"""Checks on the request itself: hostile JSON nesting is a 400 wherever JSON is read, with nothing in the log."""

import logging

import pytest
from helpers import assert_error, bearer

# Every route that reads a JSON body.
JSON_ROUTES = [
    ("POST", "/token"),
    ("POST", "/users"),
    ("PATCH", "/me"),
    ("POST", "/me/password"),
    ("PATCH", "/users/1"),
    ("POST", "/password/forgot"),
    ("POST", "/password/reset"),
    ("POST", "/email/verify"),
    ("POST", "/me/mfa/totp/confirm"),
    ("DELETE", "/me/mfa/totp"),
    ("POST", "/signin-alerts/end-session"),
    ("POST", "/clients"),
    ("PATCH", "/clients/tsc_AAAAAAAAAAAAAAAAAAAAAA"),
]


def send(client, method, path, body: str, token: str):
    return client.open(path, method=method, data=body, content_type="application/json", headers=bearer(token))


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    ["[" * 30_000 + "]" * 30_000, '{"name": ' + "[" * 32 + "]" * 32 + "}", "[" * 40_000],
    ids=["30000-deep", "33-deep", "unclosed"],
)
def test_deep_json_is_a_400_without_a_traceback(client, admin, app_log, method, path, body):
    assert len(body) <= 64 * 1024
    response = send(client, method, path, body, admin.access_token)
    assert_error(response, 400, "invalid_request")
    assert response.json["fields"] == {"body": "Nested deeper than 32 levels."}
    assert [record.getMessage() for record in app_log.records] == ["request"]  # the request line, nothing worse
    assert app_log.records[0].levelno == logging.INFO


def test_32_levels_are_read(client, admin):
    body = '{"name": ' + "[" * 31 + "]" * 31 + "}"
    response = send(client, "PATCH", "/me", body, admin.access_token)
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == {"name"}  # parsed, then refused as not a string


def test_brackets_inside_strings_do_not_count(client, admin):
    name = "[{" * 50 + '\\"' + "]" * 3
    response = send(client, "PATCH", "/me", '{"name": "' + name + '"}', admin.access_token)
    assert response.status_code == 200
    assert response.json["name"] == name.replace('\\"', '"')


@pytest.mark.parametrize(
    "body",
    [
        "[" * 33 + '"' + '\\"' * 20_000,  # deep, then a string that never closes
        '"' + '\\"' * 30_000 + "[" * 33,  # brackets after a string that never closes are inside it
    ],
    ids=["deep-then-unclosed-string", "unclosed-string-then-brackets"],
)
def test_unclosed_strings_are_read_once(client, admin, body):
    # Scanning for strings used to start again at every quote: 64 KiB of \" took seconds of CPU.
    response = send(client, "PATCH", "/me", body, admin.access_token)
    assert_error(response, 400, "invalid_request")
    deep = body.startswith("[")
    assert ("Nested deeper than 32 levels." in str(response.json.get("fields"))) is deep


def json_body_fields(client) -> list[tuple[str, str, str]]:
    """(method, path, field) for every field of every JSON request body in the API document."""
    document = client.get("/openapi.json").json
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = content["application/json"]["schema"]
            if "$ref" in schema:
                schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
            concrete = path.replace("{user_id}", "1").replace("{client_id}", "tsc_" + "A" * 22)
            found.extend((method.upper(), concrete, field) for field in schema["properties"])
    return found


def test_every_json_route_is_in_the_odd_json_tests(client):
    assert {(method, path) for method, path, _ in json_body_fields(client)} == set(JSON_ROUTES)


# A lone surrogate: valid JSON, but no UTF-8 can carry it (psycopg2, PyJWT and the hashers all refuse it).
LONE_SURROGATE = '"\\ud800"'


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_a_lone_surrogate_in_any_field_is_a_400_naming_it(client, admin, app_log, method, path):
    fields = [field for m, p, field in json_body_fields(client) if (m, p) == (method, path)]
    assert fields
    for field in fields:
        app_log.clear()
        response = send(client, method, path, f'{{"{field}": {LONE_SURROGATE}}}', admin.access_token)
        assert_error(response, 400, "invalid_request")
        assert response.json["fields"] == {field: "Must be valid Unicode text (no lone surrogates)."}
        assert [record.getMessage() for record in app_log.records] == ["request"]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    ['{"name": ' + "7" * 4301 + "}", '{"name": [' + "9" * 5000 + "]}", "{" + LONE_SURROGATE + ': "x"}'],
    ids=["4301-digit-integer", "5000-digit-integer-in-a-list", "lone-surrogate-as-a-key"],
)
def test_json_that_python_reads_but_cannot_use_is_a_400(client, admin, app_log, method, path, body):
    response = send(client, method, path, body, admin.access_token)
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == {"body"}
    assert [record.getMessage() for record in app_log.records] == ["request"]


def test_a_lone_surrogate_in_a_refresh_token_is_a_400_not_a_500(client, app_log):
    response = client.post(
        "/token", data='{"grant_type": "refresh_token", "refresh_token": "a\\udfffb"}', content_type="application/json"
    )
    assert_error(response, 400, "invalid_request")
    assert response.json["fields"] == {"refresh_token": "Must be valid Unicode text (no lone surrogates)."}


def test_valid_unicode_outside_the_basic_plane_is_kept(client, admin):
    response = send(client, "PATCH", "/me", '{"name": "\\ud83d\\ude00 Ren\\u00e9"}', admin.access_token)
    assert response.status_code == 200
    assert response.json["name"] == "\U0001f600 René"
