"""Where an error is decided (the rules, raising exceptions.py's refusals) and where it becomes HTTP (errors.py)."""

import ast
import inspect

import pytest

from tokenservice import exceptions, passwords, roles, sessions, users
from tokenservice.errors import ANSWERS, answer_for

# Every refusal the rules can raise (the base class itself is never raised).
REFUSALS = [
    cls
    for _, cls in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(cls, exceptions.Refusal) and cls is not exceptions.Refusal
]
RULE_MODULES = [users, passwords, sessions, roles, exceptions]


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
        if name.startswith((".errors", ".guards", ".routes", "werkzeug.exceptions", "flask_jwt_extended"))
        or name in ("flask.request", "flask.g", "flask.jsonify", "flask.abort", "flask.after_this_request")
    ]
    assert forbidden == []
