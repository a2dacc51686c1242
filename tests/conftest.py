"""Fixtures: a real PostgreSQL, the app built from an environment, clients and users.

The suite uses TEST_DATABASE_URL when it is set (and wipes that database),
otherwise an embedded PostgreSQL of its own that is deleted at the end.
"""

import os

import flask_migrate
import pytest
from helpers import PASSWORD, SECRET, bearer
from sqlalchemy import text

from tokenservice import create_app
from tokenservice.extensions import db
from tokenservice.models import User
from tokenservice.passwords import hash_password


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from tokenservice import embedded_db

    return embedded_db.start(tmp_path_factory.mktemp("embedded") / "pgdata", delete_on_exit=True)


@pytest.fixture(scope="session")
def base_environ(database_url):
    """The environment of a production deployment (DATABASE_URL is set)."""
    return {"DATABASE_URL": database_url, "JWT_SECRET_KEY": SECRET}


@pytest.fixture(scope="session")
def app(base_environ):
    app = create_app(base_environ)
    app.config["TESTING"] = True
    with app.app_context():
        # Start every run from nothing, through the migrations.
        db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
        flask_migrate.upgrade()
    return app


@pytest.fixture(autouse=True)
def clean_database(app):
    """Every test starts with no users and no sessions."""
    with app.app_context():
        db.session.execute(text("TRUNCATE users, sessions RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture
def make_app(base_environ):
    """Build an app from the base environment plus (or minus, with None) variables."""
    built = []

    def make(**changes):
        environ = {**base_environ, **changes}
        app = create_app({key: value for key, value in environ.items() if value is not None})
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield make
    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def add_user(app):
    """Insert a user directly; returns its id."""

    def add(username="alice", password=PASSWORD, *, password_hash=None, **columns):
        with app.app_context():
            user = User(username=username, password_hash=password_hash or hash_password(password), **columns)
            db.session.add(user)
            db.session.commit()
            return user.id

    return add


@pytest.fixture
def login(client):
    """POST /token with JSON credentials; returns the token response."""

    def log_in(username="alice", password=PASSWORD):
        response = client.post("/token", json={"username": username, "password": password})
        assert response.status_code == 200, response.json
        return response.json

    return log_in


@pytest.fixture
def alice(add_user, login):
    """A registered, logged-in user: her id, tokens and Authorization header."""
    user_id = add_user("alice")
    tokens = login()
    return {"id": user_id, "tokens": tokens, "headers": bearer(tokens["access_token"])}


@pytest.fixture
def admin(add_user, login):
    """A logged-in admin named root."""
    user_id = add_user("root", role="admin")
    tokens = login("root")
    return {"id": user_id, "tokens": tokens, "headers": bearer(tokens["access_token"])}
