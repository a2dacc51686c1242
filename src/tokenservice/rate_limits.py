"""The limit per client address on POST /token and POST /users (Flask-Limiter; README, "Abuse protection").

A route asks for the limit with `@per_address`, which also documents its
429. `init_app` gives each app a Limiter of its own (storage, enabled and
counts from its config, so several apps in one process never share them) and
applies one shared TOKEN_RATE_LIMIT to every route so marked. The client's
address is request.remote_addr, which ProxyFix sets from X-Forwarded-For for
TRUSTED_PROXIES hops (create_app). Failed logins per username are counted
apart, in PostgreSQL (login_failures.py).
"""

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .openapi import errors

# One count for all marked routes: signing up and logging in draw on the same allowance.
SCOPE = "credentials"


def per_address(view):
    """Mark a route for TOKEN_RATE_LIMIT per client address, and document its 429 rate_limited."""
    view = errors(429)(view)
    view.limited_per_address = True
    return view


def init_app(app: Flask) -> None:
    limiter = Limiter(get_remote_address, app=app)  # RATELIMIT_* settings from app.config
    # Flask-Limiter's limits hold it weakly, and with RATELIMIT_ENABLED=false
    # it keeps no reference of its own on the app.
    app.extensions["rate_limiter"] = limiter
    shared = limiter.shared_limit(app.config["TOKEN_RATE_LIMIT"], scope=SCOPE)
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "limited_per_address", False):
            app.view_functions[endpoint] = shared(view)
