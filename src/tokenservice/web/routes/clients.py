from ...rules.clients import create_client, delete_client, get_client, list_clients, set_active
from ...storage.extensions import db
from ..guards import ADMIN
from ..openapi import Blueprint, errors
from ..request_checks import JSON, accepts
from ..schemas import ClientListSchema, ClientSchema, ClientUpdateSchema, NewClientSchema, NewClientSecretSchema
from .token import NO_STORE

bp = Blueprint("clients", __name__, description="Credentials for machines (admins)")


@bp.route("/clients", methods=["POST"], guard=ADMIN)
@accepts(JSON)
@bp.arguments(NewClientSchema)
@errors(415)
@bp.response(201, NewClientSecretSchema)
def create(data):
    """Create a client with a name and scopes; its secret is in this answer only (stored as a hash)."""
    new = create_client(name=data["name"], scopes=data["scopes"])
    db.session.commit()
    client = new.client
    body = {"client_id": client.id, "client_secret": new.secret, "name": client.name, "scopes": client.scopes}
    return body, {**NO_STORE, "Location": f"/clients/{client.id}"}


@bp.route("/clients", methods=["GET"], guard=ADMIN)
@bp.response(200, ClientListSchema)
def index():
    """Every client, the oldest first (never a secret)."""
    return {"items": list_clients()}


@bp.route("/clients/<client_id>", methods=["PATCH"], guard=ADMIN)
@accepts(JSON)
@bp.arguments(ClientUpdateSchema)
@errors(404, 415)
@bp.response(200, ClientSchema)
def update(changes, client_id: str):
    """Disable a client (its tokens stop at once) or enable it again."""
    client = get_client(client_id)
    if "is_active" in changes:
        set_active(client, changes["is_active"])
    db.session.commit()
    return client


@bp.route("/clients/<client_id>", methods=["DELETE"], guard=ADMIN)
@errors(404)
@bp.response(204)
def delete(client_id: str):
    """Delete a client: its tokens stop at once."""
    delete_client(get_client(client_id))
    db.session.commit()
