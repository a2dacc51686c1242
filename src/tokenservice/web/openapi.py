"""The OpenAPI document (flask-smorest, from the request and response schemas) and its additions.

flask-smorest documents what the schemas say. This module adds what it
cannot know: the error responses each route can give (docs/api.md, "Errors"),
all with ErrorSchema, and the security schemes. Which routes need a token
follows from each route's guard (guards.py), through `Blueprint.route`.
"""

from http import HTTPStatus

import flask_smorest
from apispec import BasePlugin
from flask import Flask
from webargs.flaskparser import FlaskParser, is_json_request

from ..rules.clients import INTROSPECT, READ_USERS
from ..rules.exceptions import InvalidInput
from .request_checks import refuse_deep_json, refuse_unencodable_text
from .schemas import ErrorSchema

# A pasted bearer token, or the OAuth2 password flow of /docs's Authorize button.
TOKEN_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"oauth2": []}]
# No token, or an admin's (POST /users while ALLOW_REGISTRATION is true).
REGISTRATION_SECURITY = [{}, *TOKEN_SECURITY]

# The statuses the routes document (each with ErrorSchema).
DOCUMENTED_ERRORS = (400, 401, 403, 404, 405, 408, 409, 413, 415, 429, 500, 503)


class Api(flask_smorest.Api):
    # Every documented error response uses the one error shape.
    ERROR_SCHEMA = ErrorSchema
    # No catch-all `default` response: each route lists the errors it can
    # give (errors() below), so that a fuzzer can hold it to that list.
    DEFAULT_ERROR_RESPONSE_NAME = None
    # Its HTTPException handler is replaced by errors.py's, registered after it (create_app).


class _Parser(FlaskParser):
    # An invalid body is a 400 invalid_request, not webargs' 422.
    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req, schema):
        # Every JSON body a route reads comes through here (load_json_or_form too).
        if is_json_request(req):
            refuse_deep_json(req.get_data(cache=True))
        try:
            data = super().load_json(req, schema)
        except ValueError:  # not JSONDecodeError (webargs' 400): an integer over Python's 4,300 digits
            raise InvalidInput(fields={"body": "Holds a number too long to read."}) from None
        refuse_unencodable_text(data)
        return data


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()

    def route(self, rule, *, guard, **options):
        """flask-smorest's route, with the route's one guard (guards.py), which it both applies and documents.

        `guard` has no default, so no route can leave it out by mistake.
        """
        register = super().route(rule, **options)
        return lambda view: register(guard.protect(view, methods=options.get("methods", ["GET"])))


class _ClosedRegistration(BasePlugin):
    """With ALLOW_REGISTRATION=false the document must not offer POST /users without a token."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if operation.get("security") == REGISTRATION_SECURITY:
                operation["security"] = TOKEN_SECURITY


def init_api(app: Flask) -> Api:
    plugins = [] if app.config["ALLOW_REGISTRATION"] else [_ClosedRegistration()]
    api = Api(app, spec_kwargs={"extra_plugins": plugins})
    api.spec.components.security_scheme("basicAuth", {"type": "http", "scheme": "basic"})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme(
        "oauth2",
        {"type": "oauth2", "flows": {"password": {"tokenUrl": "/token", "refreshUrl": "/token", "scopes": {}}}},
    )
    # A client's own token (grant_type=client_credentials, rules/clients.py), for the routes that take one.
    client_scopes = {INTROSPECT: "Introspect tokens (POST /introspect)", READ_USERS: "Read users (GET /users...)"}
    api.spec.components.security_scheme(
        "clientCredentials",
        {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/token", "scopes": client_scopes}}},
    )
    for status in DOCUMENTED_ERRORS:
        # flask-smorest registers these lazily, on first use through its own
        # decorators; errors() refers to them by name, so register them now.
        api.spec.components.get_ref("response", HTTPStatus(status).name)
    return api


# Any route can answer these: a body too slow to arrive or over 64 KiB (even on a GET), and a bug.
EVERY_ROUTE_ERRORS = (408, 413, 500)


def errors(*statuses: int, **doc):
    """Document that a route can answer with these errors (and EVERY_ROUTE_ERRORS), plus any other `doc`."""
    assert set(statuses) <= set(DOCUMENTED_ERRORS), statuses
    every = sorted({*statuses, *EVERY_ROUTE_ERRORS})
    responses = {str(status): {"$ref": f"#/components/responses/{HTTPStatus(status).name}"} for status in every}
    return flask_smorest.Blueprint.doc(responses=responses, **doc)
