"""The baseline the benchmarks compare against: the classic Flask-JWT-Extended snippet, runnable.

This is the twenty-line app that Flask-JWT-Extended tutorials show and that
this service grew out of: POST /token checks a Werkzeug password hash and
returns {"token", "user_id"}; GET /protected is @jwt_required() and loads
the user with one query. No refresh, no revocation, no validation, no
rate limits. It is written here as a benchmark fixture, never served.

    BASELINE_DATABASE_URL=postgresql+psycopg2://.../db python -c "import baseline_app"  # creates alice/alice123
    BASELINE_DATABASE_URL=... gunicorn -w 2 -b 127.0.0.1:8101 baseline_app:app

Run it with the project's own virtualenv, so both sides use the same library versions.
"""

import os

from flask import Flask, jsonify, request
from flask_jwt_extended import JWTManager, create_access_token, get_jwt_identity, jwt_required
from flask_sqlalchemy import SQLAlchemy
from werkzeug.security import check_password_hash, generate_password_hash

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BASELINE_DATABASE_URL"]
app.config["JWT_SECRET_KEY"] = "x" * 64  # a benchmark fixture: no secret to keep
db = SQLAlchemy(app)
jwt = JWTManager(app)


class User(db.Model):
    __tablename__ = "baseline_users"
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(80), unique=True, nullable=False)
    password = db.Column(db.String(255), nullable=False)


with app.app_context():
    db.create_all()
    if not db.session.execute(db.select(User).filter_by(username="alice")).scalar():
        db.session.add(User(username="alice", password=generate_password_hash("alice123")))
        db.session.commit()


@app.route("/token", methods=["POST"])
def create_token():
    username = request.json.get("username", None)
    password = request.json.get("password", None)
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar()
    if user is None or not check_password_hash(user.password, password):
        return jsonify({"msg": "Bad username or password"}), 401
    return jsonify({"token": create_access_token(identity=str(user.id)), "user_id": user.id})


@app.route("/protected", methods=["GET"])
@jwt_required()
def protected():
    user = db.session.get(User, int(get_jwt_identity()))
    return jsonify({"id": user.id, "username": user.username}), 200


@app.route("/identity", methods=["GET"])
@jwt_required()
def identity():
    """Signature and expiry only: the floor any guarded route can reach."""
    return jsonify({"id": get_jwt_identity()}), 200
