"""The layers are the folders (docs/architecture.md), and the imports keep to them.

storage <- rules <- tokens <- web: each layer imports only from the ones
before it. The rules speak no HTTP (no Flask request, no HTTP errors, no
schemas); no module imports itself through others. Imports made inside
functions count.
"""

import ast
from pathlib import Path

import pytest

import tokenservice

PACKAGE = Path(tokenservice.__file__).parent
LAYERS = ["storage", "rules", "tokens", "mail", "web"]
# Beside the layers: the app factory and its entry points, the settings, the CLI, and which loop this process runs.
TOP_LEVEL = {"tokenservice", "config", "cli", "concurrency", "wsgi", "flask_app"}
# What only the web layer may import: Flask's request side and the HTTP libraries.
HTTP_LIBRARIES = (
    "werkzeug.exceptions",
    "werkzeug.wrappers",
    "flask_jwt_extended",
    "flask_smorest",
    "webargs",
    "marshmallow",
)
FLASK_REQUEST = {"flask.request", "flask.g", "flask.jsonify", "flask.abort", "flask.after_this_request"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.relative_to(PACKAGE).parts:
            continue  # Alembic's, run by flask db
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The absolute names a module imports (`from flask import request`: flask and flask.request)."""
    path = MODULES[name]
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            imported = {f"{target}.{alias.name}" for alias in node.names}
            # `from . import config` imports tokenservice.config, not the package's __init__.
            names |= imported if imported <= MODULES.keys() else {target, *imported}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def _package_imports(name: str) -> set[str]:
    return {other for other in _imports(name) if other in MODULES and other != name}


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_is_in_a_layer_or_named_beside_them():
    loose = [name for name in MODULES if _layer(name) is None and name.split(".")[-1] not in TOP_LEVEL]
    assert "tokenservice.web.routes.logout" in MODULES and loose == []


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_the_layers_below_it(layer):
    below = LAYERS[: LAYERS.index(layer) + 1]
    crossings = {
        name: sorted(other for other in _package_imports(name) if _layer(other) not in (*below, None))
        for name in MODULES
        if _layer(name) == layer
    }
    assert crossings and {name: others for name, others in crossings.items() if others} == {}


@pytest.mark.parametrize("layer", ["storage", "rules"])
def test_the_rules_and_storage_speak_no_http(layer):
    """No Flask request, no HTTP errors, no schemas, no token library: a rule raises a refusal (rules/exceptions.py)."""
    spoken = {
        name: sorted(other for other in _imports(name) if other.startswith(HTTP_LIBRARIES) or other in FLASK_REQUEST)
        for name in MODULES
        if _layer(name) == layer
    }
    assert spoken and {name: names for name, names in spoken.items() if names} == {}


def test_no_module_imports_itself_through_others():
    graph = {name: _package_imports(name) for name in MODULES}
    assert "tokenservice.storage.models" in graph["tokenservice.rules.sessions"]  # the graph sees relative imports
    assert "tokenservice.tokens.key_pairs" in graph["tokenservice.config"]  # and imports inside functions
    cycles = []

    def visit(name, path):
        for other in sorted(graph[name]):
            if other in path:
                cycles.append([*path[path.index(other) :], other])
            elif other not in done:
                visit(other, [*path, other])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []
