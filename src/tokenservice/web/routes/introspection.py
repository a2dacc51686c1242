from flask import g

from ...rules import events
from ...tokens.introspection import introspect
from ..guards import INTROSPECTING_CLIENT
from ..openapi import Blueprint, errors
from ..rate_limits import per_address
from ..request_checks import FORM, accepts
from ..schemas import IntrospectionSchema, TokenFormSchema
from .token import NO_STORE

bp = Blueprint("introspection", __name__, description="Whether a token is live, for other services (RFC 7662)")


@bp.route("/introspect", methods=["POST"], guard=INTROSPECTING_CLIENT)
@per_address
@accepts(FORM)
@bp.arguments(TokenFormSchema, location="form")
@errors(415)
@bp.response(200, IntrospectionSchema)
def introspect_token(data):
    """Is this token live (signature, expiry, session)? Its claims if so, else only active: false."""
    answer = introspect(data["token"])
    events.record("token_introspected", client_id=g.client.id, active=answer["active"])
    return answer, NO_STORE
