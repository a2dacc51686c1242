"""Whether this process serves on gevent's event loop (the Procfile's gunicorn workers: src/gunicorn.conf.py).

There, greenlets share one thread, so slow work goes to a thread of its own
(rules/passwords.py) and slow reads get a deadline (web/request_checks.py). Without
it (flask run, the CLI, the tests' client) each request has its own thread.
gunicorn's config says which: its gevent workers call serve_on_gevent()
once they have loaded the app, before they serve.
"""

_on_gevent = False


def serve_on_gevent() -> None:
    global _on_gevent
    _on_gevent = True


def under_gevent() -> bool:
    return _on_gevent
