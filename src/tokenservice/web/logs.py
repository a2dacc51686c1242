"""Logs an operator can run the service by: one JSON line per request and per security event, on stdout.

Request lines carry the time, method, path (never the query string, where a
token might have been put), status, duration, the user id when a token was
checked, the client's address (TRUSTED_PROXIES hops of X-Forwarded-For) and
a request id: the caller's X-Request-ID when it is a plain token, else a new
one, echoed in the response. Security events come from the rules through the
`tokenservice.security` logger (rules/events.py) and carry the same request id and
address. No password, hash, token, secret or Authorization value is ever put
in a line (a test drives every route and reads every line for them).
"""

import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime

import flask.logging
from flask import Flask, g, has_request_context, request
from flask_jwt_extended import get_jwt

from ..rules.clients import ID_PREFIX

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line: time, level, event, then its fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)  # JSON escapes its newlines
        return json.dumps(entry, default=str)


class _RequestContext(logging.Filter):
    """Adds the request id and client address to every line logged during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and "request_id" in g:
            record.fields = {"request_id": g.request_id, "client": request.remote_addr, **getattr(record, "fields", {})}
        return True


def init_app(app: Flask) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_RequestContext())
    for name in ("tokenservice", app.logger.name):
        logger = logging.getLogger(name)
        # Replaces the line writer of an app built before in this process (the
        # tests build many), and Flask's own, which wrote every line a second
        # time as plain text; any other handler (an error tracker's) stays.
        others = [
            kept
            for kept in logger.handlers
            if not isinstance(kept.formatter, JsonFormatter) and kept is not flask.logging.default_handler
        ]
        logger.handlers[:] = [handler, *others]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    requests_log = logging.getLogger("tokenservice.requests")

    @app.before_request
    def start_request():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
        g.request_started = time.perf_counter()

    @app.after_request
    def log_request(response):
        response.headers["X-Request-ID"] = g.request_id
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
        }
        subject = g.get("user_id") or _token_user_id()
        if isinstance(subject, str) and subject.startswith(ID_PREFIX):
            fields["client_id"] = subject  # a client's token (rules/clients.py)
        elif subject:
            fields["user_id"] = int(subject)
        requests_log.info("request", extra={"fields": fields})
        return response


def identify(user_id: int) -> None:
    """Name the request's user in its log line, where no access token names it (a login)."""
    g.user_id = user_id


def _token_user_id() -> str | None:
    try:
        return get_jwt().get("sub")
    except RuntimeError:  # no token was checked in this request
        return None
