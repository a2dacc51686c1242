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
