"""gunicorn settings, used by Procfile's `web:` line."""

import os

# Lets `gunicorn ... wsgi:app` import the app from src/ without installing it.
pythonpath = os.path.dirname(os.path.abspath(__file__))
bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Heroku's router gives up after 30 s; answer or fail well before that.
timeout = 25
graceful_timeout = 20
# No access log: Heroku's router already logs every request, and formatting
# one line per request is a measurable share of a guarded route's cost.
# gunicorn 27's control socket (for gunicornc) is unused here, and every
# instance on one machine would share its default path in $HOME.
control_socket_disable = True


def on_starting(server):
    """Once, in the master rather than in every worker: say so when rate limits are counted per process."""
    from tokenservice import ROOT
    from tokenservice.config import ConfigError, load_settings, storage_warning

    try:
        warning = storage_warning(load_settings(os.environ, instance_path=str(ROOT / "instance")))
    except ConfigError:
        return  # each worker stops with the sentence that names the variable
    if warning:
        server.log.warning(warning)
