"""Security events: what an operator must be able to see, one log line each (docs/production.md, "Logs").

The rules call `record` where the event happens; web/logs.py writes each as a
JSON line with the request's id and client address. Fields are ids, counts
and names of what changed, never a password, hash, token or typed-in
username (a password typed into the username field would end up in the log).
"""

import logging

_log = logging.getLogger("tokenservice.security")


def record(event: str, *, warning: bool = False, **fields) -> None:
    _log.log(logging.WARNING if warning else logging.INFO, event, extra={"fields": fields})
