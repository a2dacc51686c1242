"""gunicorn settings for the snippet with our worker class: gevent with psycopg2 cooperative, as ours."""

worker_class = "gevent"


def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()


def post_request(worker, req, environ, resp):
    import gevent

    gevent.sleep(0)  # as ours: each answer lets the worker's other connections have a turn
