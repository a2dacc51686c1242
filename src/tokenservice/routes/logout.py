from ..claims import read_claims
from ..exceptions import SessionEnded, TokenExpired
from ..extensions import db
from ..guards import SESSION_TOKEN, session_claims, session_token_expired
from ..openapi import Blueprint
from ..schemas import LogoutQuerySchema
from ..sessions import end_sessions
from ..tokens import clear_token_cookies

bp = Blueprint("logout", __name__, description="Ending sessions")


@bp.route("/logout", methods=["POST"], guard=SESSION_TOKEN)
@bp.arguments(LogoutQuerySchema, location="query")
@bp.response(204)
def logout(query):
    """End the caller's session (access or refresh token, even an expired one), or all with ?all=true."""
    claims = read_claims(session_claims())
    if query["everywhere"] and session_token_expired():
        # An old token that leaked must not be a lasting "log this user out everywhere" button.
        raise TokenExpired("Ending every session needs a token that has not expired: refresh it, then try again.")
    # From here on (the token's signature and, for cookies, the CSRF value are
    # good) the cookies go, even when the session had already ended: the
    # page's script cannot delete HttpOnly cookies itself.
    clear_token_cookies()
    # Ending the caller's own session first proves the token's session was live.
    if not end_sessions(user_id=claims.user_id, session_id=claims.session_id):
        raise SessionEnded("The token's session has already ended.")
    if query["everywhere"]:
        end_sessions(user_id=claims.user_id)
    db.session.commit()
