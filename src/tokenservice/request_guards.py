"""Checks every request passes before a view runs."""

import functools
import re

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import APIError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# RFC 7235: the auth scheme is case-insensitive; Flask-JWT-Extended compares
# it exactly, so "bearer x" and "BEARER x" are rewritten to "Bearer x".
_BEARER = re.compile(r"^\s*bearer(?=\s|$)", re.IGNORECASE)


def init_app(app: Flask) -> None:
    app.before_request(refuse_large_bodies)
    app.before_request(normalise_bearer_scheme)
    app.after_request(forbid_caching)


def refuse_large_bodies() -> None:
    """Refuse a declared body over the limit before any view reads it."""
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def normalise_bearer_scheme() -> None:
    header = request.environ.get("HTTP_AUTHORIZATION")
    if header and _BEARER.match(header):
        request.environ["HTTP_AUTHORIZATION"] = _BEARER.sub("Bearer", header, count=1)


def forbid_caching(response):
    # Tokens and user data must not sit in shared or browser caches.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def accepts(*media_types: str):
    """Refuse a request body of any other media type with a 415."""

    def decorator(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            has_body = bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")
            if has_body and _media_type() not in media_types:
                raise APIError(415, "unsupported_media_type", f"The body must be {' or '.join(media_types)}.")
            return view(*args, **kwargs)

        return guarded

    return decorator


def _media_type() -> str:
    return JSON if request.is_json else request.mimetype
