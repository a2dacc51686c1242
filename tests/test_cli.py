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


def test_list(runner, add_user):
    add_user("alice")
    add_user("root", role="admin", is_active=False)
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[1].split() == ["1", "alice", "user", "yes"]
    assert lines[2].split() == ["2", "root", "admin", "no"]
    assert lines[-1] == "2 user(s)."


def test_set_role_promotes_and_ends_sessions(runner, app, client, alice):
    result = runner.invoke(args=["users", "set-role", "ALICE", "admin"])
    assert result.exit_code == 0, result.output
    assert "'alice' is now admin" in result.output
    assert stored_user(app, "alice").role == "admin"
    assert client.get("/me", headers=alice["headers"]).status_code == 401


def test_set_role_refuses_to_demote_the_last_admin(runner, app, add_user):
    add_user("root", role="admin")
    result = runner.invoke(args=["users", "set-role", "root", "user"])
    assert result.exit_code == 1
    assert "last active admin" in result.output
    assert stored_user(app, "root").role == "admin"


def test_deactivate(runner, app, client, alice):
    result = runner.invoke(args=["users", "deactivate", "alice"])
    assert result.exit_code == 0, result.output
    assert stored_user(app, "alice").is_active is False
    assert client.get("/me", headers=alice["headers"]).status_code == 401
    assert client.post("/token", json={"username": "alice", "password": PASSWORD}).status_code == 401


def test_deactivate_refuses_the_last_admin(runner, add_user):
    add_user("root", role="admin")
    result = runner.invoke(args=["users", "deactivate", "root"])
    assert result.exit_code == 1
    assert "last active admin" in result.output


def test_reset_password(runner, client, alice):
    new = "a reset passphrase here"
    result = runner.invoke(args=["users", "reset-password", "alice"], input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert client.get("/me", headers=alice["headers"]).status_code == 401
    assert client.post("/token", json={"username": "alice", "password": new}).status_code == 200


def test_reset_password_applies_the_rules(runner, client, alice):
    result = runner.invoke(args=["users", "reset-password", "alice", "--password", "qwerty123"])
    assert result.exit_code == 1
    assert "common" in result.output
    assert client.get("/me", headers=alice["headers"]).status_code == 200


@pytest.mark.parametrize(
    "args", [["set-role", "nobody", "admin"], ["deactivate", "nobody"], ["reset-password", "nobody", "--password", "x"]]
)
def test_unknown_users(runner, args):
    result = runner.invoke(args=["users", *args])
    assert result.exit_code == 1
    assert "no user named 'nobody'" in result.output


def test_set_role_refuses_an_unknown_role(runner, add_user):
    add_user("alice")
    result = runner.invoke(args=["users", "set-role", "alice", "root"])
    assert result.exit_code == 2
