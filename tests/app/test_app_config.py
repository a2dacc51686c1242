"""Settings seen by the app built from them: a postgres:// URL reaches the database, a short secret stops create_app.

The settings themselves (load_settings, with no app and no database) are tested in unit/test_config.py.
"""

import pytest
from sqlalchemy import text

from tokenservice import create_app
from tokenservice.config import ConfigError, normalise_database_url
from tokenservice.storage.extensions import db


def test_heroku_url_reaches_the_database(make_app, database_url):
    heroku_url = normalise_database_url(database_url).replace("postgresql+psycopg2://", "postgres://", 1)
    app = make_app(DATABASE_URL=heroku_url)
    with app.app_context():
        assert db.engine.dialect.driver == "psycopg2"
        assert db.session.execute(text("SELECT 1")).scalar() == 1


def test_short_secret_stops_create_app(base_environ):
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        create_app({**base_environ, "JWT_SECRET_KEY": "short"})
