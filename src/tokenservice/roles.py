"""Role guards, built on Flask-JWT-Extended's verify_jwt_in_request."""

import functools

from flask_jwt_extended import get_current_user, verify_jwt_in_request

from .errors import APIError

# RFC 6750 3.1: a valid token without the needed role.
CHALLENGE_INSUFFICIENT_SCOPE = 'Bearer realm="api", error="insufficient_scope"'


def is_admin() -> bool:
    """Whether the request's verified token belongs to a live admin.

    The current user is the live row (sessions.find_live_user), not the
    token's `role` claim, so a demotion takes effect at the next request.
    """
    user = get_current_user()
    return user is not None and user.role == "admin"


def forbidden(message: str = "This needs an admin.", **kwargs) -> APIError:
    return APIError(403, "forbidden", message, headers={"WWW-Authenticate": CHALLENGE_INSUFFICIENT_SCOPE}, **kwargs)


def admin_required(view):
    """Let only a live admin's valid access token through (401 without one, else 403)."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        verify_jwt_in_request()
        if not is_admin():
            raise forbidden()
        return view(*args, **kwargs)

    return guarded
