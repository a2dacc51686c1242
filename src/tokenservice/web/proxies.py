"""The client's address behind TRUSTED_PROXIES proxies: werkzeug's ProxyFix, believing only IP addresses.

ProxyFix takes the address from X-Forwarded-For for exactly that many hops,
so a client that invents addresses in front of the real one is still one
client. What it takes is any string, though: with no proxy in front (a
misconfiguration), a client could send "anything" and be counted and logged
as that. A value that is not an IP address is ignored: the request keeps the
address it came from, and the worker warns once.
"""

import ipaddress
import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

log = logging.getLogger("tokenservice.web.proxies")


def init_app(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        # The client's address (and scheme) from that many X-Forwarded-* hops, no more.
        # Flask's documented way to add a WSGI middleware, which type checkers take for replacing a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            _only_ip_addresses(app.wsgi_app), x_for=hops, x_proto=hops
        )


def _only_ip_addresses(wsgi_app):
    warned = False

    def believe_only_ip_addresses(env, start_response):  # the WSGI environ
        nonlocal warned
        # ProxyFix keeps what it replaced here (documented), and has just set REMOTE_ADDR.
        original = env["werkzeug.proxy_fix.orig"]["REMOTE_ADDR"]
        if env.get("REMOTE_ADDR") != original and not _is_ip_address(env.get("REMOTE_ADDR")):
            env["REMOTE_ADDR"] = original
            if not warned:
                warned = True
                log.warning(
                    "X-Forwarded-For held a value that is not an IP address: it was ignored, and such requests "
                    "count as coming from the connection's own address (is TRUSTED_PROXIES right?)"
                )
        return wsgi_app(env, start_response)

    return believe_only_ip_addresses


def _is_ip_address(value) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
