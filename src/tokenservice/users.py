"""Users: registration, login checks and profile changes, free of `request`."""

from sqlalchemy import func

from .errors import APIError, username_taken
from .extensions import db
from .models import User
from .passwords import burn_hash_time, hash_password, password_problem, verify_password


def find_user_by_username(username: str) -> User | None:
    if not username.isascii():
        # Usernames are ASCII; str.lower() would map look-alikes such as the
        # Kelvin sign onto ASCII letters.
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


def invalid_credentials() -> APIError:
    return APIError(401, "invalid_credentials", "Wrong username or password.")
