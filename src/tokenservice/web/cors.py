"""CORS for browser clients on other origins, with Flask-Cors, from CORS_ORIGINS."""

import re

from flask import Flask
from flask_cors import CORS

from ..config import cookie_mode


def init_app(app: Flask) -> None:
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        # Flask-Cors reflects *any* origin when given none: no CORS() at all.
        return
    cookies = cookie_mode(app.config["JWT_TOKEN_LOCATION"])
    # Registered first so that it runs after Flask-Cors's own after_request.
    app.after_request(_vary_on_origin)
    CORS(
        app,
        # Anchored, escaped patterns: Flask-Cors 6 does not split a comma-separated
        # string, and treats an entry holding [ ] ( ) ? $ ^ as an unanchored regex.
        origins=[re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in origins],
        methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-OTP",
            "X-Recovery-Code",
            *(["X-CSRF-TOKEN"] if cookies else []),
        ],
        expose_headers=["Location", "Retry-After", "WWW-Authenticate"],
        # Credentials (cookies) cross origins only in cookie mode.
        supports_credentials=cookies,
        max_age=600,
        # No Access-Control-Allow-Origin on requests that carry no Origin.
        always_send=False,
    )


def _vary_on_origin(response):
    # Every answer may differ by Origin once CORS is on, those to requests
    # without one included: a cache that kept the demo's app.js from a
    # same-origin request must not serve it, without Access-Control-Allow-Origin,
    # to another origin. (Flask-Cors 6 adds Vary: Origin only with several
    # origins, and only where it added its own headers.)
    response.vary.add("Origin")
    return response
