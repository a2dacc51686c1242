"""gunicorn settings, used by Procfile's `web:` line (docs/production.md)."""

import os

from gunicorn.glogging import Logger

# A blank PORT means the default, as for every other setting (.env.example).
# WEB_CONCURRENCY must be a number or unset: gunicorn itself reads it first.
bind = f"0.0.0.0:{os.environ.get('PORT') or '5000'}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent, not sync: a client that trickles its headers or body holds one
# greenlet of an event loop, not a whole worker, so /health and everyone else
# are still served (measured in docs/production.md, "Workers"). post_fork makes
# psycopg2 cooperative; rules/passwords.py hashes off the loop.
worker_class = "gevent"
# Connections one worker holds at once, slow ones included; more wait in the
# listen queue.
worker_connections = 1000
# Seconds an idle keep-alive connection stays open.
keepalive = 2
# With gevent, `timeout` is a heartbeat: a worker whose event loop was
# blocked that long is restarted (a request's own waits are bounded in
# config.py, under Heroku's 30 s). Heroku waits 30 s after SIGTERM before
# killing: requests in flight get 20.
timeout = 25
graceful_timeout = 20
# What gunicorn itself refuses before the app sees a request (its defaults,
# stated): a request line over 4094 bytes is a 414, more than 100 header
# fields or one over 8190 bytes a 431, in gunicorn's own HTML (docs/production.md,
# "Requests gunicorn itself refuses").
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# gunicorn 27's control socket (for gunicornc) is unused here, and every
# instance on one machine would share its default path in $HOME.
control_socket_disable = True


class JsonRequestLogOnly(Logger):
    """gunicorn's logger without its access log: the app writes one JSON line per request (web/logs.py).

    Heroku's Python buildpack exports GUNICORN_CMD_ARGS="--access-logfile -",
    which outranks this file's settings; this class is not overridden by it,
    so the text access line never comes back.
    """

    def access(self, resp, req, environ, request_time):
        pass


logger_class = JsonRequestLogOnly


def post_worker_init(worker):
    """The worker has loaded the app: start its mail sender, say so, and once per start what it lacks.

    The master imports nothing of the app: gevent must patch ssl and friends
    in each worker before anything imports them.
    """
    if type(worker).__module__ == "gunicorn.workers.ggevent":
        from tokenservice.concurrency import serve_on_gevent

        serve_on_gevent()  # hashing off the event loop, deadlines on slow reads
    from tokenservice.mail import sender

    sender.start(worker.wsgi)  # this worker's mail sender, before its first request
    worker.log.info("Worker ready (pid: %s)", worker.pid)
    if worker.age == 1:  # the first worker of this start; replacements are older
        from tokenservice.config import mail_warning, storage_warning

        for warning in (storage_warning(worker.wsgi.config), mail_warning(worker.wsgi.config)):
            if warning:
                worker.log.warning(warning)


def post_fork(server, worker):
    if type(worker).__module__ == "gunicorn.workers.ggevent":  # not when run with -k sync or gthread
        # psycopg2 waits for PostgreSQL on the event loop, not in a blocking call.
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


def post_request(worker, req, environ, resp):
    """After each answer, let the worker's other connections have a turn.

    A request that never waits (a read answered from the session cache)
    never yields the event loop, and a keep-alive client whose next request
    is already there would be served again and again while the others wait:
    p99 of /protected was 130 to 235 ms against a p50 of 1 ms under 8
    connections. Yielding here brought p99 to 6 to 18 ms at the same rate.
    """
    if type(worker).__module__ == "gunicorn.workers.ggevent":
        import gevent

        gevent.sleep(0)
