"""The app for gunicorn (Procfile's `web:`) and for `flask` (`.flaskenv`, Procfile's `release:`)."""

import sys

from tokenservice import create_app
from tokenservice.config import ConfigError

try:
    app = create_app()
except ConfigError as refused:
    # One sentence that says what to set, not a traceback. 4 is gunicorn's
    # "App failed to load", which stops the master: any other code would
    # have it start the worker again, for ever. `flask` exits with it too.
    print(f"tokenservice cannot start: {refused}", file=sys.stderr)
    sys.exit(4)
