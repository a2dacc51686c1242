import uuid

from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import NoAuthorizationError, UserLookupError
from jwt import ExpiredSignatureError

from ..errors import token_refused
from ..extensions import Blueprint, db
from ..openapi import errors, needs_token
from ..schemas import LogoutQuerySchema
from ..sessions import end_sessions
from ..tokens import clear_token_cookies, cookie_mode

bp = Blueprint("logout", __name__, description="Ending sessions")


@bp.route("/logout", methods=["POST"])
@needs_token
@bp.arguments(LogoutQuerySchema, location="query")
@errors(401, 403, 503)
@bp.response(204)
def logout(query):
    """End the caller's session (access or refresh token, even an expired one), or all with ?all=true."""
    claims = _claims_even_if_expired()
    # From here on (the token's signature and, for cookies, the CSRF value are
    # good) the cookies go, even when the session had already ended: the
    # page's script cannot delete HttpOnly cookies itself.
    clear_token_cookies()
    try:
        user_id, session_id = int(claims["sub"]), uuid.UUID(claims["sid"])
    except (KeyError, TypeError, ValueError):
        raise token_refused() from None
    # Ending the caller's own session first proves the token's session was live.
    if not end_sessions(user_id=user_id, session_id=session_id):
        raise token_refused("The token's session has already ended.")
    if query["everywhere"]:
        end_sessions(user_id=user_id)
    db.session.commit()


def _claims_even_if_expired() -> dict:
    """The token's claims, its signature checked, whether or not it has expired.

    An SPA coming back after an hour holds an expired access token and must
    still be able to log out. In cookie mode, the refresh cookie (sent to
    /logout too) stands in when the access cookie is gone.
    """
    try:
        try:
            verify_jwt_in_request(verify_type=False)
        except NoAuthorizationError:
            if not cookie_mode():
                raise
            verify_jwt_in_request(refresh=True)
    except (ExpiredSignatureError, UserLookupError) as exc:
        # Flask-JWT-Extended attaches the claims, decoded with the signature
        # (and CSRF value) checked; the session is judged by the caller.
        return exc.jwt_data
    return get_jwt()
