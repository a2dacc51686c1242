"""Whether this process serves on gevent's event loop (the Procfile's gunicorn workers: src/gunicorn.conf.py).

There, greenlets share one thread, so slow work goes to a thread of its own
(passwords.py) and slow reads get a deadline (request_checks.py). Without
it (flask run, the CLI, the tests' client) each request has its own thread.
"""

import sys


def under_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")
