"""Users: registration, login checks, profile changes and administration, free of `request`."""

from sqlalchemy import func
from sqlalchemy.exc import InvalidRequestError

from .errors import APIError, username_taken
from .extensions import db
from .models import User
from .passwords import burn_hash_time, hash_password, password_problem, verify_password
from .sessions import end_sessions


def find_user_by_username(username: str) -> User | None:
    if not username.isascii() or "\x00" in username:
        # Usernames are ASCII; str.lower() would map look-alikes such as the
        # Kelvin sign onto ASCII letters. (PostgreSQL refuses NUL outright.)
        return None
    return db.session.execute(db.select(User).where(func.lower(User.username) == username.lower())).scalar_one_or_none()


def create_user(*, username: str, password: str, name: str | None = None, role: str = "user") -> User:
    """Add a user; the caller has checked the password rules and commits."""
    if find_user_by_username(username) is not None:
        raise username_taken()
    user = User(username=username, name=name, role=role, password_hash=hash_password(password))
    db.session.add(user)
    # A concurrent registration of the same name fails here on the unique
    # index, and errors.py answers 409 for it.
    db.session.flush()
    return user


def authenticate(*, username: str, password: str) -> User:
    """The active user with these credentials, or a 401 invalid_credentials.

    An unknown username costs the same hash work as a wrong password, and an
    inactive user gets the same answer as a wrong password.
    """
    user = find_user_by_username(username)
    if user is None:
        burn_hash_time(password)
        raise invalid_credentials()
    checked_hash = user.password_hash
    matches, outdated = verify_password(checked_hash, password)
    if not matches:
        raise invalid_credentials()
    # Hashing takes a while, so read the row again, locked until the caller
    # commits: a password change, deactivation or deletion that committed
    # meanwhile wins, and one that comes later waits for this login (and
    # then ends the session it opens).
    try:
        db.session.refresh(user, with_for_update=True)
    except InvalidRequestError:  # deleted meanwhile
        raise invalid_credentials() from None
    if user.password_hash != checked_hash:  # changed, or re-hashed by a concurrent login
        matches, outdated = verify_password(user.password_hash, password)
    if not matches or not user.is_active:
        raise invalid_credentials()
    if outdated:
        user.password_hash = hash_password(password)
    return user


def update_profile(*, user: User, changes: dict) -> User:
    for field in ("name",):
        if field in changes:
            setattr(user, field, changes[field])
    db.session.flush()
    return user


def change_password(*, user: User, current: str, new: str) -> None:
    """Set a new password after checking the current one; the caller ends sessions and commits."""
    if not verify_password(user.password_hash, current)[0]:
        raise APIError(
            400, "invalid_request", "The current password is wrong.", fields={"current_password": "Wrong password."}
        )
    problem = password_problem(new, username=user.username)
    if problem:
        raise APIError(400, "invalid_request", "The new password is refused.", fields={"new_password": problem})
    user.password_hash = hash_password(new)
    db.session.flush()  # before the caller ends sessions: see update_user


def list_users(
    *, page: int, per_page: int, prefix: str | None = None, role: str | None = None, active: bool | None = None
) -> tuple[list[User], int]:
    """One page of users by id, and how many match in all."""
    query = db.select(User)
    if prefix:
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(User.username).like(f"{escaped}%", escape="\\"))
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.is_active == active)
    total = db.session.execute(db.select(func.count()).select_from(query.subquery())).scalar_one()
    offset = (page - 1) * per_page
    if offset >= total:  # past the end (and no OFFSET too large for PostgreSQL)
        return [], total
    items = db.session.execute(query.order_by(User.id).limit(per_page).offset(offset)).scalars()
    return list(items), total


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise APIError(404, "not_found", "There is no such user.")
    return user


def update_user(*, user: User, changes: dict) -> User:
    """An admin's change of `name`, `role`, `is_active` or `password`; the caller commits.

    Deactivating a user, or changing their role or password, ends their
    sessions, so that their tokens stop (and new ones carry the new role).
    """
    if "password" in changes:
        problem = password_problem(changes["password"], username=user.username)
        if problem:
            raise APIError(400, "invalid_request", "The password is refused.", fields={"password": problem})
    stays_admin = changes.get("role", user.role) == "admin" and changes.get("is_active", user.is_active)
    if not stays_admin:
        _ensure_another_admin_remains(user)
    ends_sessions = (
        changes.get("role", user.role) != user.role
        or changes.get("is_active", user.is_active) != user.is_active
        or "password" in changes
    )
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
    for field in ("name", "role", "is_active"):
        if field in changes:
            setattr(user, field, changes[field])
    # The row first: a login in progress holds it locked (see authenticate),
    # so this waits for it, and the sessions ended next include its session.
    db.session.flush()
    if ends_sessions:
        end_sessions(user_id=user.id)
    return user


def delete_user(*, user: User) -> None:
    """Delete a user; their sessions go with them (ON DELETE CASCADE). The caller commits."""
    _ensure_another_admin_remains(user)
    db.session.delete(user)
    db.session.flush()


def _ensure_another_admin_remains(user: User) -> None:
    """Refuse (409 last_admin) to let `user` stop being an active admin if they are the last one.

    The active admins' rows are locked first, so two admins demoting each
    other at the same moment are judged one after the other: the second sees
    the first's change and is refused.
    """
    admins = (
        db.session.execute(db.select(User.id).where(User.role == "admin", User.is_active).with_for_update())
        .scalars()
        .all()
    )
    if admins == [user.id]:
        raise APIError(409, "last_admin", "This is the last active admin: make another admin first.")


def invalid_credentials() -> APIError:
    return APIError(401, "invalid_credentials", "Wrong username or password.")
