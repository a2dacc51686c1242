"""The limit per client address on POST /token and POST /users (Flask-Limiter; README, "Abuse protection").

A route asks for the limit with `@per_address`, which also documents its
429. `init_app` gives each app a Limiter of its own (storage, enabled and
counts from its config, so several apps in one process never share them) and
applies one shared TOKEN_RATE_LIMIT to every route so marked. The client's
address is request.remote_addr, which ProxyFix sets from X-Forwarded-For for
TRUSTED_PROXIES hops (create_app). Failed logins per username are counted
apart, in PostgreSQL (login_failures.py).
"""

import functools

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from . import events
from .openapi import errors

# One count for all marked routes: signing up and logging in draw on the same allowance.
SCOPE = "credentials"


def per_address(view):
    """Mark a route for TOKEN_RATE_LIMIT per client address, and document its 429 rate_limited."""
    view = errors(429)(view)
    view.limited_per_address = True
    return view


def init_app(app: Flask) -> None:
    hooks = {
        "before": app.before_request_funcs,
        "after": app.after_request_funcs,
        "teardown": app.teardown_request_funcs,
    }
    registered = {kind: len(registry.get(None, [])) for kind, registry in hooks.items()}
    limiter = Limiter(get_remote_address, app=app, on_breach=_breached)  # RATELIMIT_* settings from app.config
    # Flask-Limiter's limits hold it weakly, and with RATELIMIT_ENABLED=false
    # it keeps no reference of its own on the app.
    app.extensions["rate_limiter"] = limiter
    shared = limiter.shared_limit(app.config["TOKEN_RATE_LIMIT"], scope=SCOPE)
    limited = set()
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "limited_per_address", False):
            app.view_functions[endpoint] = shared(view)
            limited.add(endpoint)
    # Flask-Limiter runs its app-wide hooks on every request, where they cost
    # about 80 µs (7 % of GET /protected) to find that no limit applies: the
    # ones it just registered now run on the limited routes only.
    for kind, registry in hooks.items():
        funcs = registry.get(None, [])
        funcs[registered[kind] :] = [_only_on(limited, hook, kind) for hook in funcs[registered[kind] :]]


def _breached(limit) -> None:
    events.record("rate_limited", warning=True, limit=str(limit.limit))


def _only_on(endpoints: set[str], hook, kind: str):
    @functools.wraps(hook)
    def scoped(*args):
        if request.endpoint not in endpoints:
            return args[0] if kind == "after" else None  # an after-request hook hands the response on
        if kind != "after":
            return hook(*args)
        # Flask-Limiter also puts its Retry-After on every other answer of a
        # limited route (a 200, or a 503's own "5"): only a 429 waits for the limit.
        response, own = args[0], args[0].headers.get("Retry-After")
        response = hook(response)
        if response.status_code != 429:
            response.headers.pop("Retry-After", None)
            if own:
                response.headers["Retry-After"] = own
        return response

    return scoped
