"""Roles: the one admin check, and the rule that the last active admin stays."""

from ..storage.extensions import db
from ..storage.models import ADMIN, User
from .exceptions import Forbidden, LastAdmin


def is_active_admin(role, is_active):
    """The admin check, for values (a user, or the changes proposed to one) and for columns alike.

    `&` is `and` for Python booleans and AND for SQLAlchemy columns, so the
    last-admin query below uses this same definition.
    """
    return (role == ADMIN) & is_active


def require_admin(user: User | None, message: str | None = None) -> None:
    """Refuse (Forbidden) unless `user` is an active admin.

    `user` is the live row that the token check loaded, never the token's
    `role` claim, so a demotion takes effect at the next request.
    """
    if user is None or not is_active_admin(user.role, user.is_active):
        raise Forbidden(message)


def ensure_another_admin_remains(user: User) -> None:
    """Refuse (LastAdmin) to let `user` stop being an active admin if they are the last one.

    The active admins' rows are locked first, so two admins demoting each
    other at the same moment are judged one after the other: the second sees
    the first's change and is refused.
    """
    admins = db.session.execute(
        db.select(User.id).where(is_active_admin(User.role, User.is_active)).with_for_update()
    ).scalars()
    if list(admins) == [user.id]:
        raise LastAdmin()
