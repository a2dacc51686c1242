"""Checks on the request itself: body size and media type, and the Bearer scheme's case."""

import contextlib
import functools
import io
import re
import socket
from itertools import accumulate

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..concurrency import under_gevent
from ..rules.exceptions import BodyTooSlow, InvalidInput, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# RFC 7235: the auth scheme is case-insensitive; Flask-JWT-Extended compares
# it exactly, so "bearer x" and "BEARER x" are rewritten to "Bearer x".
_BEARER = re.compile(r"^\s*bearer(?=\s|$)", re.IGNORECASE)


def init_app(app: Flask) -> None:
    app.before_request(refuse_large_bodies)
    app.before_request(receive_body)
    app.before_request(normalise_bearer_scheme)


def _body_limit() -> int:
    """MAX_CONTENT_LENGTH, which config.py always sets (request.max_content_length may be None to Flask)."""
    return current_app.config["MAX_CONTENT_LENGTH"]


def refuse_large_bodies() -> None:
    """Refuse a declared body over the limit before any view reads it (a chunked one: receive_body)."""
    if not request.environ.get("CONTENT_LENGTH"):
        return  # no declared body (most guarded requests are GETs): nothing to measure
    if request.content_length is not None and request.content_length > _body_limit():
        raise RequestEntityTooLarge()


# Seconds a body may take to arrive, once its headers have: plenty for 64 KiB
# over a slow mobile link, and far less than a trickle needs.
BODY_SECONDS = 10


def receive_body() -> None:
    """Receive the whole body, declared or chunked, before any view, or its guard, runs, within BODY_SECONDS.

    Read later, after a guard's query, a body trickled slowly would hold a
    pooled database connection while it arrives. Read with no deadline, it
    holds the connection's greenlet for as long as the client likes: a body
    trickled a byte every few seconds was still being read after minutes, and
    a couple of thousand of them stopped /health. Past the deadline the
    answer is a 408 and the connection is closed.
    """
    chunked = _is_chunked() and request.environ.get("wsgi.input_terminated")
    if not request.content_length and not chunked:
        return
    with _within(BODY_SECONDS):
        if request.content_length:
            request.get_data(cache=True)
            return
        # A chunked body has no Content-Length, and Werkzeug silently cuts it
        # at MAX_CONTENT_LENGTH: read one byte more to tell, and keep what we read.
        limit = _body_limit()
        body = request.environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        request.environ["wsgi.input"] = io.BytesIO(body)


@contextlib.contextmanager
def _within(seconds: float):
    """Under gevent, end the block after `seconds` with BodyTooSlow, and close the connection's reading side."""
    if not under_gevent():  # flask run and the tests' client: no event loop to hold up
        yield
        return
    import gevent

    deadline = gevent.Timeout(seconds)
    deadline.start()
    try:
        yield
    except gevent.Timeout as expired:
        if expired is not deadline:
            raise
        # gunicorn would go on reading what is left of the body before a next
        # request on this connection: end its reading side (the 408 still goes out).
        connection = request.environ.get("gunicorn.socket")
        if connection is not None:
            with contextlib.suppress(OSError):  # the client may be gone already
                connection.shutdown(socket.SHUT_RD)
        raise BodyTooSlow() from None
    finally:
        deadline.close()


def normalise_bearer_scheme() -> None:
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header and not header.startswith("Bearer ") and _BEARER.match(header):
        request.environ["HTTP_AUTHORIZATION"] = _BEARER.sub("Bearer", header, count=1)


def accepts(*media_types: str):
    """Refuse a request body of any other media type with a 415."""

    def decorator(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            has_body = bool(request.content_length) or _is_chunked()
            if has_body and _media_type() not in media_types:
                raise UnsupportedMediaType(f"The body must be {' or '.join(media_types)}.")
            return view(*args, **kwargs)

        return guarded

    return decorator


# Deeper JSON than any request of this API needs, and far below what makes a
# recursive parser overflow (30,000 brackets fit in 64 KiB).
MAX_JSON_DEPTH = 32
# A string, or from an unclosed quote to the end. Every match that starts
# succeeds (no string is tried again from a later quote), so the scan stays
# linear: a closing quote was required before, and 32 KiB of \" took seconds.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_NESTING = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def refuse_deep_json(body: bytes) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH, before any parser recurses into it.

    A linear scan of the (at most 64 KiB) body: strings are removed, then
    the running depth of the brackets left is measured in C-level loops.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if max(accumulate(map(_NESTING.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH:
        problem = f"Nested deeper than {MAX_JSON_DEPTH} levels."
        raise InvalidInput("The JSON body is nested too deeply.", fields={"body": problem})


UNENCODABLE = "Must be valid Unicode text (no lone surrogates)."


def refuse_unencodable_text(data) -> None:
    """Refuse strings that no UTF-8 can carry: JSON's "\\ud800" (a lone surrogate) reads as one in Python.

    PostgreSQL, PyJWT and the hashers would each fail on it with a 500. The
    field is named when it is a top-level value; a key, or anything else, is `body`.
    """
    if not _unencodable(data):
        return
    if isinstance(data, dict):
        bad = [key for key, value in data.items() if not _unencodable(key) and _unencodable(value)]
        if bad and not any(_unencodable(key) for key in data):
            raise InvalidInput(fields=dict.fromkeys(bad, UNENCODABLE))
    raise InvalidInput(fields={"body": UNENCODABLE})


def _unencodable(value) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unencodable(key) or _unencodable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(map(_unencodable, value))
    return False


def _is_chunked() -> bool:
    return "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _media_type() -> str:
    return JSON if request.is_json else request.mimetype
