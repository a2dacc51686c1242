import functools

from flask import current_app
from flask_jwt_extended import verify_jwt_in_request
from marshmallow import RAISE

from ..extensions import Blueprint, db
from ..openapi import errors, needs_token
from ..request_guards import JSON, accepts
from ..roles import admin_required, forbidden, is_admin
from ..schemas import NewUserSchema, UserListQuerySchema, UserListSchema, UserSchema, UserUpdateSchema
from ..users import create_user, delete_user, get_user, list_users, update_user

bp = Blueprint("users", __name__, description="Registration, and user administration (admins)")


def registration_allowed(view):
    """With ALLOW_REGISTRATION=false, only an admin gets as far as the body's validation."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        if not current_app.config["ALLOW_REGISTRATION"]:
            verify_jwt_in_request()
            if not is_admin():
                raise forbidden("Only an admin may create users.")
        return view(*args, **kwargs)

    return guarded


@bp.route("/users", methods=["POST"])
@registration_allowed
@bp.doc(security=[{}, {"bearerAuth": []}, {"oauth2": []}])
@accepts(JSON)
@bp.arguments(NewUserSchema)
@errors(401, 403, 409, 413, 415, 503)
@bp.response(201, UserSchema, headers={"Location": {"description": "/users/<id>", "schema": {"type": "string"}}})
def register(data):
    """Create a user: anyone while ALLOW_REGISTRATION, else an admin; only an admin may set `role`."""
    if "role" in data:
        # Anyone but an admin, with a token or without, gets a 403. (An open
        # registration without `role` never looks at the token.)
        verify_jwt_in_request(optional=True)
        if not is_admin():
            raise forbidden("Only an admin may set a role.")
    user = create_user(
        username=data["username"], password=data["password"], name=data.get("name"), role=data.get("role", "user")
    )
    db.session.commit()
    return user, {"Location": f"/users/{user.id}"}


@bp.route("/users", methods=["GET"])
@admin_required
@needs_token
@bp.arguments(UserListQuerySchema, location="query", unknown=RAISE)
@errors(401, 403, 503)
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


@bp.route("/users/<int:user_id>", methods=["GET"])
@admin_required
@needs_token
@errors(401, 403, 404, 503)
@bp.response(200, UserSchema)
def show(user_id):
    """Show one user."""
    return get_user(user_id)


@bp.route("/users/<int:user_id>", methods=["PATCH"])
@admin_required
@needs_token
@accepts(JSON)
@bp.arguments(UserUpdateSchema)
@errors(401, 403, 404, 409, 413, 415, 503)
@bp.response(200, UserSchema)
def update(changes, user_id):
    """Change a user's name, role, active flag or password; all but a name change end their sessions."""
    user = update_user(user=get_user(user_id), changes=changes)
    db.session.commit()
    return user


@bp.route("/users/<int:user_id>", methods=["DELETE"])
@admin_required
@needs_token
@errors(401, 403, 404, 409, 503)
@bp.response(204)
def delete(user_id):
    """Delete a user; their tokens stop at once."""
    delete_user(user=get_user(user_id))
    db.session.commit()
