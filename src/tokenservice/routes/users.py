from ..errors import APIError
from ..extensions import Blueprint, db
from ..request_guards import JSON, accepts
from ..schemas import NewUserSchema, UserSchema
from ..users import create_user

bp = Blueprint("users", __name__, description="Registration")


@bp.route("/users", methods=["POST"])
@accepts(JSON)
@bp.arguments(NewUserSchema)
@bp.response(201, UserSchema)
def register(data):
    """Create a user."""
    if "role" in data:
        raise APIError(403, "forbidden", "Only an admin may set a role.", fields={"role": "Admins only."})
    user = create_user(username=data["username"], password=data["password"], name=data.get("name"))
    db.session.commit()
    return user, {"Location": f"/users/{user.id}"}
