"""The rules decide an error (raising rules/exceptions.py's refusals); web/errors.py turns it into HTTP."""

import inspect

import pytest

from tokenservice.rules import exceptions
from tokenservice.web.errors import ANSWERS, answer_for

# Every refusal the rules can raise (the base class itself is never raised).
REFUSALS = [
    cls
    for _, cls in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(cls, exceptions.Refusal) and cls is not exceptions.Refusal
]


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
