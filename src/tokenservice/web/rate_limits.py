"""Limits on attempts per client address and per account (Flask-Limiter; docs/abuse-protection.md).

A route asks for TOKEN_RATE_LIMIT per address with `@per_address`, which also
documents its 429. `init_app` gives each app a Limiter of its own (storage,
enabled and counts from its config, so several apps in one process never
share them) and applies one shared TOKEN_RATE_LIMIT to every route so
marked. Limits that need the caller's account (a password change), or that
apply only after the body is read (an open registration), are spent from the
view with `spend`, in the same storage. The client's address is
request.remote_addr, which proxies.py sets from X-Forwarded-For for
TRUSTED_PROXIES hops. Failed logins per username are counted apart, in
PostgreSQL (rules/login_failures.py).

What init_app relies on in Flask-Limiter 4.x (tests/unit/test_library_contracts.py
holds it to it): that its init_app adds its app-wide before-, after- and
teardown-request hooks to the app's public lists of hooks, which are then
wrapped to run on the limited routes only.
"""

import functools
import math
import time
from dataclasses import dataclass

import limits
from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.strategies import MovingWindowRateLimiter

from ..rules import events
from ..rules.exceptions import TooManyAttempts
from ..storage.database import release_connection
from .memory_counts import SCHEME, MemoryCounts
from .openapi import errors

# One count for all marked routes: signing up and logging in draw on the same allowance.
SCOPE = "credentials"
# Seconds `spend` counts in this process once the storage failed, before it tries the storage again.
STORAGE_RETRY_SECONDS = 30


def per_address(view):
    """Mark a route for TOKEN_RATE_LIMIT per client address, and document its 429 rate_limited."""
    view = errors(429)(view)
    view.limited_per_address = True
    return view


def init_app(app: Flask) -> None:
    hooks: dict[str, dict] = {
        "before": app.before_request_funcs,
        "after": app.after_request_funcs,
        "teardown": app.teardown_request_funcs,
    }
    registered = {kind: len(registry.get(None, [])) for kind, registry in hooks.items()}
    # RATELIMIT_* settings from app.config; memory:// counts in memory_counts.py, not in limits' MemoryStorage.
    in_memory = app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    limiter = Limiter(
        get_remote_address, app=app, on_breach=_breached, storage_uri=f"{SCHEME}://" if in_memory else None
    )
    # Flask-Limiter's limits hold it weakly, and with RATELIMIT_ENABLED=false
    # it keeps no reference of its own on the app.
    app.extensions["rate_limiter"] = limiter
    # Where `spend` counts while the storage (Redis) cannot be reached: in this process, as Flask-Limiter does.
    app.extensions["rate_limiter_fallback"] = _Fallback(MovingWindowRateLimiter(MemoryCounts()))
    shared = limiter.shared_limit(app.config["TOKEN_RATE_LIMIT"], scope=SCOPE)
    limited = set()
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "limited_per_address", False):
            # Typed by Flask-Limiter as returning an awaitable too; these views are all synchronous.
            app.view_functions[endpoint] = shared(view)  # type: ignore[assignment]
            limited.add(endpoint)
    # Flask-Limiter runs its app-wide hooks on every request, where they cost
    # about 80 µs (7 % of GET /protected) to find that no limit applies: the
    # ones it just registered now run on the limited routes only.
    for kind, registry in hooks.items():
        funcs = registry.get(None, [])
        funcs[registered[kind] :] = [_only_on(limited, hook, kind) for hook in funcs[registered[kind] :]]


def spend(setting: str, **keys: str) -> None:
    """Count one attempt against the limit in config[setting] for each key; refuse (TooManyAttempts) if any is spent.

    `keys` name what is counted, e.g. account="7", address="203.0.113.9":
    each has its own count. A count that is spent is not counted further;
    the others are (hit() checks and counts in one step, so that requests
    running at once cannot all pass).
    """
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return
    release_connection()  # Redis is a wait too: no pooled connection held meanwhile
    item = limits.parse(config[setting])
    counts = [(config["RATELIMIT_KEY_PREFIX"], setting.lower(), name, value) for name, value in keys.items()]
    fallback = current_app.extensions["rate_limiter_fallback"]
    refused = None
    if time.monotonic() >= fallback.storage_dead_until:
        strategy = current_app.extensions["rate_limiter"].limiter
        try:
            refused = [count for count in counts if not strategy.hit(item, *count)]
        except Exception as error:  # unreachable: count in this process for a while, rather than fail requests
            fallback.storage_dead_until = time.monotonic() + STORAGE_RETRY_SECONDS
            current_app.logger.warning(
                "rate limit storage unavailable, counting in this process for %d s: %s",
                STORAGE_RETRY_SECONDS,
                type(error).__name__,
            )
    if refused is None:
        strategy = fallback.limiter
        refused = [count for count in counts if not strategy.hit(item, *count)]
    if refused:
        reset = max(strategy.get_window_stats(item, *count).reset_time for count in refused)
        events.record("rate_limited", warning=True, limit=f"{setting}: {config[setting]}")
        raise TooManyAttempts(retry_after=max(1, math.ceil(reset - time.time())))


@dataclass
class _Fallback:
    limiter: MovingWindowRateLimiter
    storage_dead_until: float = 0.0  # time.monotonic() until which the storage is not tried again


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
