"""flask users create."""

import pytest
from helpers import PASSWORD, assert_error, assert_refused
from sqlalchemy import select

from tokenservice.storage.models import User


def stored(database, username, column):
    """`column` of the users named `username`: [its value], or [] when there is none."""
    return database.scalars(select(column).where(User.username == username))


def test_create_with_password(runner, auth, database):
    result = runner.invoke(args=["users", "create", "carol", "--password", PASSWORD, "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert "Created admin 'carol'" in result.output
    assert stored(database, "carol", User.role) == ["admin"]
    assert auth.login("carol").claims["role"] == "admin"


def test_create_prompts_twice_when_no_password_is_given(runner, database):
    result = runner.invoke(args=["users", "create", "dave"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output  # hidden
    assert stored(database, "dave", User.role) == ["user"]


def test_create_insists_that_the_prompts_agree(runner, database):
    result = runner.invoke(args=["users", "create", "erin"], input=f"{PASSWORD}\nsomething else\n")
    assert result.exit_code != 0
    assert stored(database, "erin", User.id) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name", "--password", PASSWORD], "username"),
        (["frank", "--password", "password123"], "common"),
        (["frank", "--password", PASSWORD, "--role", "root"], "root"),
    ],
)
def test_create_refuses_bad_input(runner, database, args, message):
    result = runner.invoke(args=["users", "create", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert stored(database, "frank", User.id) == []


def test_create_refuses_a_taken_name(runner, auth):
    auth.add_user("grace")
    result = runner.invoke(args=["users", "create", "GRACE", "--password", PASSWORD])
    assert result.exit_code == 1
    assert "taken" in result.output


def test_list(runner, auth):
    auth.add_user("alice")
    auth.add_user("root", role="admin", is_active=False)
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 4, result.output  # a heading, a line per user, the count
    assert lines[1].split() == ["1", "alice", "user", "yes"]
    assert lines[2].split() == ["2", "root", "admin", "no"]
    assert lines[-1] == "2 user(s)."


def test_set_role_promotes_and_ends_sessions(runner, client, database, alice):
    result = runner.invoke(args=["users", "set-role", "ALICE", "admin"])
    assert result.exit_code == 0, result.output
    assert "'alice' is now admin" in result.output
    assert stored(database, "alice", User.role) == ["admin"]
    assert_refused(client.get("/me", headers=alice.headers))


def test_set_role_refuses_to_demote_the_last_admin(runner, auth, database):
    auth.add_user("root", role="admin")
    result = runner.invoke(args=["users", "set-role", "root", "user"])
    assert result.exit_code == 1
    assert "last active admin" in result.output
    assert stored(database, "root", User.role) == ["admin"]


def test_deactivate(runner, client, auth, database, alice):
    result = runner.invoke(args=["users", "deactivate", "alice"])
    assert result.exit_code == 0, result.output
    assert stored(database, "alice", User.is_active) == [False]
    assert_refused(client.get("/me", headers=alice.headers))
    assert_error(auth.token("alice"), 401, "invalid_credentials")


def test_deactivate_refuses_the_last_admin(runner, auth, database):
    auth.add_user("root", role="admin")
    result = runner.invoke(args=["users", "deactivate", "root"])
    assert result.exit_code == 1
    assert "last active admin" in result.output
    assert stored(database, "root", User.is_active) == [True]


def test_reset_password(runner, client, auth, alice):
    new = "a reset passphrase here"
    result = runner.invoke(args=["users", "reset-password", "alice"], input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert_refused(client.get("/me", headers=alice.headers))
    assert_error(auth.token("alice"), 401, "invalid_credentials")
    assert auth.token("alice", new).status_code == 200


def test_reset_password_applies_the_rules(runner, client, auth, alice):
    result = runner.invoke(args=["users", "reset-password", "alice", "--password", "qwerty123"])
    assert result.exit_code == 1
    assert "common" in result.output
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert auth.token("alice").status_code == 200  # the old password still works


@pytest.mark.parametrize(
    "args", [["set-role", "nobody", "admin"], ["deactivate", "nobody"], ["reset-password", "nobody", "--password", "x"]]
)
def test_unknown_users(runner, args):
    result = runner.invoke(args=["users", *args])
    assert result.exit_code == 1
    assert "no user named 'nobody'" in result.output


def test_set_role_refuses_an_unknown_role(runner, auth, database):
    auth.add_user("alice")
    result = runner.invoke(args=["users", "set-role", "alice", "root"])
    assert result.exit_code == 2
    assert stored(database, "alice", User.role) == ["user"]
