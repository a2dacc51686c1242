"""gunicorn settings for the snippet with our worker class: gevent with psycopg2 cooperative, as ours."""

worker_class = "gevent"


def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
