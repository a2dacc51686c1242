from flask import current_app
from werkzeug.exceptions import NotFound

from ..guards import ANYONE
from ..openapi import Blueprint, errors
from ..schemas import JwksSchema

bp = Blueprint("keys", __name__, description="The public keys other services verify tokens with")

# Other services may keep the set this long (PyJWKClient keeps it 300 s by
# default, and fetches it again for a kid it has not seen only 30 s after its
# last fetch), so a new key is published before it signs (docs/keys.md, "Rotating keys").
MAX_AGE_SECONDS = 300


@bp.route("/.well-known/jwks.json", methods=["GET"], guard=ANYONE)
@errors(404)
@bp.response(200, JwksSchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
def jwks():
    """The public keys that verify this service's tokens (RS256 or ES256), current and previous; 404 with HS256."""
    key_set = current_app.config["SIGNING_KEYS"].jwks()
    if key_set is None:
        raise NotFound()
    return key_set, {"Cache-Control": f"public, max-age={MAX_AGE_SECONDS}"}
