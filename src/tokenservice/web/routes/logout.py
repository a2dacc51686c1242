from ...rules.sessions import check_logout, log_out
from ...storage.extensions import db
from ...tokens.claims import read_claims
from ...tokens.cookies import clear_token_cookies
from ..guards import SESSION_TOKEN, session_claims, session_token_expired
from ..openapi import Blueprint
from ..schemas import LogoutQuerySchema

bp = Blueprint("logout", __name__, description="Ending sessions")


@bp.route("/logout", methods=["POST"], guard=SESSION_TOKEN)
@bp.arguments(LogoutQuerySchema, location="query")
@bp.response(204)
def logout(query):
    """End the caller's session (access or refresh token, even an expired one), or all with ?all=true."""
    claims = read_claims(session_claims())
    check_logout(everywhere=query["everywhere"], token_expired=session_token_expired())
    # From here on (the token's signature and, for cookies, the CSRF value are
    # good) the cookies go, even when the session had already ended: the
    # page's script cannot delete HttpOnly cookies itself.
    clear_token_cookies()
    log_out(user_id=claims.user_id, session_id=claims.session_id, everywhere=query["everywhere"])
    db.session.commit()
