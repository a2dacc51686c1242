"""The OpenAPI document (flask-smorest, from the request and response schemas) and its additions.

flask-smorest documents what the schemas say. This module adds what it
cannot know: the error responses each route can give (SPEC 5, all with
ErrorSchema), the security schemes, and which routes need a token.
"""

from http import HTTPStatus

import flask_smorest
from flask import Flask

from .schemas import ErrorSchema

# The SPEC 5 statuses the routes document (each with ErrorSchema).
DOCUMENTED_ERRORS = (400, 401, 403, 404, 405, 409, 413, 415, 500, 503)


class Api(flask_smorest.Api):
    # Every documented error response uses SPEC 5's shape.
    ERROR_SCHEMA = ErrorSchema
    # No catch-all `default` response: each route lists the errors it can
    # give (errors() below), so that a fuzzer can hold it to that list.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):
        # errors.py owns every error response; flask-smorest's own handler is not used.
        pass


def init_api(app: Flask) -> Api:
    api = Api(app)
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme(
        "oauth2",
        {"type": "oauth2", "flows": {"password": {"tokenUrl": "/token", "refreshUrl": "/token", "scopes": {}}}},
    )
    for status in DOCUMENTED_ERRORS:
        # flask-smorest registers these lazily, on first use through its own
        # decorators; errors() refers to them by name, so register them now.
        api.spec.components.get_ref("response", HTTPStatus(status).name)
    return api


# Any route can answer these: a body over 64 KiB (even on a GET), and a bug.
EVERY_ROUTE_ERRORS = (413, 500)


def errors(*statuses: int):
    """Document that a route can answer with these SPEC 5 errors (and EVERY_ROUTE_ERRORS)."""
    assert set(statuses) <= set(DOCUMENTED_ERRORS), statuses
    every = sorted({*statuses, *EVERY_ROUTE_ERRORS})
    return flask_smorest.Blueprint.doc(
        responses={str(status): {"$ref": f"#/components/responses/{HTTPStatus(status).name}"} for status in every}
    )


# A route that needs a token: a pasted bearer token or the OAuth2 password flow.
needs_token = flask_smorest.Blueprint.doc(security=[{"bearerAuth": []}, {"oauth2": []}])
