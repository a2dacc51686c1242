"""Flask-SQLAlchemy, created unbound and bound in `create_app()` (the others: tokens/issuing.py, web/openapi.py)."""

from typing import TYPE_CHECKING

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
# The models' base class: db.Model, which Flask-SQLAlchemy makes at run time from Base; a type checker sees Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
