"""tokenservice: a bearer-token microservice on Flask-JWT-Extended and PostgreSQL."""

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from . import cli
from .config import ConfigError, load_settings
from .mail import sender
from .rules import second_factor
from .storage import database
from .storage.extensions import db
from .tokens import session_cache
from .tokens.issuing import jwt, register_token_loaders
from .web import cors, logs, proxies, rate_limits, request_checks, security_headers
from .web.errors import register_error_handlers
from .web.openapi import init_api
from .web.routes import BLUEPRINTS, demo, docs


def create_app(environ: Mapping[str, str] | None = None, *, migrations: bool = True) -> Flask:
    """Build the app from environment variables (`os.environ` unless given).

    migrations=False leaves out the `flask db` commands: gunicorn's workers
    never migrate, and Flask-Migrate imports Alembic, 12 MB of each worker's
    memory.
    """
    # No /static route: the demo page is served only with its CSP (routes/demo.py).
    # instance/ (the embedded database, a development secret) is the working directory's, as for
    # `flask keys generate`: the project's root, where make, the Procfile and the tests run.
    app = Flask(__name__, instance_path=str(Path.cwd() / "instance"), static_folder=None)
    app.config.update(load_settings(os.environ if environ is None else environ, instance_path=app.instance_path))
    logs.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"] is None:
        from .storage import embedded_db

        app.config["SQLALCHEMY_DATABASE_URI"] = embedded_db.start(Path(app.instance_path) / "postgres")

    db.init_app(app)
    database.init_app(app)
    with app.app_context():
        session_cache.init_app(app, db.engine)
    if migrations:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(Path(__file__).parent / "storage" / "migrations"))  # they ship with the package
    jwt.init_app(app)
    proxies.init_app(app)
    api = init_api(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    app.register_blueprint(demo.bp)
    app.register_blueprint(docs.bp)
    rate_limits.init_app(app)
    # After the extensions, so that these handlers replace any they registered.
    register_error_handlers(app, jwt)
    register_token_loaders(jwt)
    request_checks.init_app(app)
    security_headers.init_app(app)
    cors.init_app(app)
    cli.init_app(app)
    sender.init_app(app)
    return app


def create_app_or_exit(*, migrations: bool) -> Flask:
    """create_app() for a process's entry point (wsgi.py, flask_app.py).

    A setting it refuses stops the process with one sentence that says what
    to set, not a traceback. The exit status is 4, gunicorn's "App failed to
    load", which stops its master: any other would have it start the worker
    again, for ever. `flask` exits with it too. The app that serves
    (migrations=False) also refuses to start when users have second factors
    that MFA_KEY cannot open; `flask db upgrade` and the other commands still run.
    """
    try:
        app = create_app(migrations=migrations)
        problem = None if migrations else second_factor.key_problem(app)
        if problem:
            raise ConfigError(problem)
        return app
    except ConfigError as refused:
        print(f"tokenservice cannot start: {refused}", file=sys.stderr)
        sys.exit(4)
