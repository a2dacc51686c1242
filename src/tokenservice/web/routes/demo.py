"""GET /: the demo single-page app (static files, no build step), outside the API document."""

from pathlib import Path

from flask import Blueprint, send_from_directory

DEMO_DIR = Path(__file__).resolve().parents[1] / "static" / "demo"

bp = Blueprint("demo", __name__)


@bp.get("/")
def page():
    """The demo page; security_headers.py gives it its Content-Security-Policy."""
    return send_from_directory(DEMO_DIR, "index.html", max_age=0)


@bp.get("/<any('app.js', 'app.css'):filename>")
def asset(filename):
    """The page's script and style, beside it, so the folder also works as plain files."""
    return send_from_directory(DEMO_DIR, filename, max_age=300)
