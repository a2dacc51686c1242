"""Where an error is decided (the rules, raising exceptions.py's refusals) and where it becomes HTTP (errors.py)."""

import ast
import inspect
from pathlib import Path

import pytest

import tokenservice
from tokenservice import devices, events, exceptions, login_failures, passwords, roles, sessions, users
from tokenservice.errors import ANSWERS, answer_for

# Every refusal the rules can raise (the base class itself is never raised).
REFUSALS = [
    cls
    for _, cls in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(cls, exceptions.Refusal) and cls is not exceptions.Refusal
]
RULE_MODULES = [users, passwords, sessions, roles, login_failures, devices, events, exceptions]
# The HTTP side: what turns requests into calls of the rules, and refusals into answers.
HTTP_SIDE = (
    ".errors",
    ".guards",
    ".routes",
    ".openapi",
    ".schemas",
    ".request_checks",
    ".rate_limits",
    ".cors",
    ".security_headers",
    ".proxies",
    ".logs",
    ".tokens",
)


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda cls: cls.__name__)
def test_every_refusal_has_one_answer(refusal):
    answer = answer_for(refusal())
    assert 400 <= answer.status < 600
    assert answer.error.isidentifier() and answer.error == answer.error.lower()


def test_a_refusal_without_an_answer_is_a_mistake_not_a_guess():
    class Unanswered(exceptions.Refusal):
        pass

    with pytest.raises(TypeError, match="Unanswered"):
        answer_for(Unanswered())


def test_the_answers_name_only_refusals():
    assert ANSWERS and all(issubclass(cls, exceptions.Refusal) for cls in ANSWERS)


def _imports(module) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


@pytest.mark.parametrize("module", RULE_MODULES, ids=lambda module: module.__name__)
def test_the_rules_speak_no_http(module):
    """The modules that hold the rules import neither errors.py nor Flask's request layer nor HTTP errors."""
    forbidden = [
        name
        for name in _imports(module)
        if name.startswith(
            (
                *HTTP_SIDE,
                "werkzeug.exceptions",
                "werkzeug.wrappers",
                "flask_jwt_extended",
                "flask_smorest",
                "webargs",
                "marshmallow",
            )
        )
        or name in ("flask.request", "flask.g", "flask.jsonify", "flask.abort", "flask.after_this_request")
    ]
    assert forbidden == []


def _import_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, at its top or inside a function."""
    package = Path(tokenservice.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        if "migrations" in path.relative_to(package).parts:
            continue
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here.split(".")[: len(here.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                for alias in node.names:
                    imported = f"{target}.{alias.name}"
                    graph[name].add(imported if imported in modules else target)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names}
        graph[name] = {other for other in graph[name] if other in modules and other != name}
    return graph


def test_no_module_imports_itself_through_others():
    """No import cycle anywhere in the package, counting imports made inside functions."""
    graph = _import_graph()
    assert "tokenservice.sessions" in graph and "tokenservice.models" in graph["tokenservice.sessions"]
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
