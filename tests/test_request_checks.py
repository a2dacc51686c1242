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
