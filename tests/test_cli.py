"""flask users create."""

import pytest
from helpers import PASSWORD

from tokenservice.extensions import db
from tokenservice.models import User


def stored_user(app, username):
    with app.app_context():
        return db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()


def test_create_with_password(runner, app, client):
    result = runner.invoke(args=["users", "create", "carol", "--password", PASSWORD, "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert "Created admin 'carol'" in result.output
    assert stored_user(app, "carol").role == "admin"
    assert client.post("/token", json={"username": "carol", "password": PASSWORD}).status_code == 200


def test_create_prompts_twice_when_no_password_is_given(runner, app):
    result = runner.invoke(args=["users", "create", "dave"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output  # hidden
    assert stored_user(app, "dave").role == "user"


def test_create_insists_that_the_prompts_agree(runner, app):
    result = runner.invoke(args=["users", "create", "erin"], input=f"{PASSWORD}\nsomething else\n")
    assert result.exit_code != 0
    assert stored_user(app, "erin") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--password", PASSWORD], "username"),
        (["frank", "--password", "password123"], "common"),
        (["frank", "--password", PASSWORD, "--role", "root"], "root"),
    ],
)
def test_create_refuses_bad_input(runner, app, args, message):
    result = runner.invoke(args=["users", "create", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert stored_user(app, "frank") is None


def test_create_refuses_a_taken_name(runner, add_user):
    add_user("grace")
    result = runner.invoke(args=["users", "create", "GRACE", "--password", PASSWORD])
    assert result.exit_code == 1
    assert "taken" in result.output
