"""The Flask extensions, created unbound and bound in `create_app()` (the Api: openapi.py)."""

import flask_smorest
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from webargs.flaskparser import FlaskParser


class Base(DeclarativeBase):
    pass


class _Parser(FlaskParser):
    # SPEC 5: an invalid body is a 400 invalid_request, not webargs' 422.
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
