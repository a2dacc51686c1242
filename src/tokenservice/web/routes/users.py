from flask import current_app, request
from marshmallow import RAISE

from ...rules.users import create_user, delete_user, get_user, list_users, update_user
from ...storage.extensions import db
from ..guards import ADMIN, ADMIN_OR_USER_READER, REGISTRATION, require_admin_caller
from ..openapi import Blueprint, errors
from ..rate_limits import per_address, spend
from ..request_checks import JSON, accepts
from ..schemas import NewUserSchema, UserListQuerySchema, UserListSchema, UserSchema, UserUpdateSchema

bp = Blueprint("users", __name__, description="Registration, and user administration (admins)")


@bp.route("/users", methods=["POST"], guard=REGISTRATION)
@per_address
@accepts(JSON)
@bp.arguments(NewUserSchema)
@errors(409, 415, 503)
@bp.response(201, UserSchema, headers={"Location": {"description": "/users/<id>", "schema": {"type": "string"}}})
def register(data):
    """Create a user: anyone while ALLOW_REGISTRATION, else an admin; only an admin may set `role`."""
    if "role" in data:
        # Anyone but an admin, with a token or without, gets a 403. (An open
        # registration without `role` never looks at the token.)
        require_admin_caller("Only an admin may set a role.")
    elif current_app.config["ALLOW_REGISTRATION"]:  # a sign-up: anyone may send it, and it costs a hash
        spend("REGISTRATION_RATE_LIMIT", address=request.remote_addr)
    user = create_user(**data)
    db.session.commit()
    return user, {"Location": f"/users/{user.id}"}


@bp.route("/users", methods=["GET"], guard=ADMIN_OR_USER_READER)
@bp.arguments(UserListQuerySchema, location="query", unknown=RAISE)
@bp.response(200, UserListSchema)
def index(query):
    """List users by id, a page at a time, filtered by username prefix, role and active."""
    items, total = list_users(
        page=query["page"],
        per_page=query["per_page"],
        prefix=query.get("q"),
        role=query.get("role"),
        active=query.get("active"),
    )
    return {"items": items, "page": query["page"], "per_page": query["per_page"], "total": total}


@bp.route("/users/<int:user_id>", methods=["GET"], guard=ADMIN_OR_USER_READER)
@errors(404)
@bp.response(200, UserSchema)
def show(user_id):
    """Show one user."""
    return get_user(user_id)


@bp.route("/users/<int:user_id>", methods=["PATCH"], guard=ADMIN)
@accepts(JSON)
@bp.arguments(UserUpdateSchema)
@errors(404, 409, 415, 503)
@bp.response(200, UserSchema)
def update(changes, user_id):
    """Change a user's name, e-mail address, role, active flag or password; role, active and password end sessions."""
    user = update_user(user=get_user(user_id), changes=changes)
    db.session.commit()
    return user


@bp.route("/users/<int:user_id>", methods=["DELETE"], guard=ADMIN)
@errors(404, 409)
@bp.response(204)
def delete(user_id):
    """Delete a user; their tokens stop at once."""
    delete_user(user=get_user(user_id))
    db.session.commit()
