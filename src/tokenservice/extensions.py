"""The Flask extensions, created unbound and bound in `create_app()` (the Api and Blueprint: openapi.py)."""

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from .decoded_tokens import RememberingJWTManager


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
jwt = RememberingJWTManager()  # Flask-JWT-Extended's, verifying each token string once
