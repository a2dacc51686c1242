from ...rules.clients import authenticate_client
from ...storage.extensions import db
from ...tokens.introspection import revoke
from ..guards import ANYONE, client_credentials
from ..openapi import Blueprint, errors
from ..rate_limits import per_address
from ..request_checks import FORM, accepts
from ..schemas import TokenFormSchema

bp = Blueprint("revocation", __name__, description="Ending a token's session from outside (RFC 7009)")


@bp.route("/revoke", methods=["POST"], guard=ANYONE)
@per_address
@accepts(FORM)
@bp.arguments(TokenFormSchema, location="form")
@bp.doc(security=[{}, {"basicAuth": []}])
@errors(400, 401, 415, 503)
@bp.response(200)
def revoke_token(data):
    """End a token's session: a user's token needs nothing more, a client's its credentials. 200 for any token."""
    client_id, secret = client_credentials()
    # A public client (the SPA) may send its client_id alone (RFC 6749 3.2.1): only a secret is authenticated.
    client = authenticate_client(client_id, secret) if secret is not None else None
    revoke(data["token"], client=client)
    db.session.commit()
    return ""
