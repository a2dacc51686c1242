"""Checks on the request itself: body size and media type, and the Bearer scheme's case."""

import functools
import io
import re

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from .exceptions import UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# RFC 7235: the auth scheme is case-insensitive; Flask-JWT-Extended compares
# it exactly, so "bearer x" and "BEARER x" are rewritten to "Bearer x".
_BEARER = re.compile(r"^\s*bearer(?=\s|$)", re.IGNORECASE)


def init_app(app: Flask) -> None:
    app.before_request(refuse_large_bodies)
    app.before_request(normalise_bearer_scheme)


def refuse_large_bodies() -> None:
    """Refuse a declared body over the limit before any view reads it."""
    limit = request.max_content_length
    length = request.content_length
    if length is not None:
        if length > limit:
            raise RequestEntityTooLarge()
    elif _is_chunked() and request.environ.get("wsgi.input_terminated"):
        # A chunked body has no Content-Length, and Werkzeug silently cuts it
        # at MAX_CONTENT_LENGTH: read one byte more to tell, and keep what we read.
        body = request.environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        request.environ["wsgi.input"] = io.BytesIO(body)


def normalise_bearer_scheme() -> None:
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header and _BEARER.match(header):
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


def _is_chunked() -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _media_type() -> str:
    return JSON if request.is_json else request.mimetype
