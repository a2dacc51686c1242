"""GET /docs: Swagger UI on /openapi.json, served from the service's own files (no CDN)."""

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, send_from_directory

DOCS_DIR = Path(__file__).resolve().parents[1] / "static" / "docs"
# Swagger UI's own files, from the flask-swagger-ui wheel (its blueprint is
# not used: its page starts Swagger UI with an inline script).
SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
SWAGGER_UI_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "oauth2-redirect.html", "oauth2-redirect.js")

bp = Blueprint("docs", __name__)


@bp.get("/docs")
def page():
    """The interactive API page; security_headers.py gives it its Content-Security-Policy."""
    return send_from_directory(DOCS_DIR, "index.html", max_age=0)


@bp.get("/docs/initializer.js")
def initializer():
    return send_from_directory(DOCS_DIR, "initializer.js", max_age=300)


@bp.get(f"/docs/<any({', '.join(repr(name) for name in SWAGGER_UI_FILES)}):filename>")
def swagger_ui(filename):
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=3600)
