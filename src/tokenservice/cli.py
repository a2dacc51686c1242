"""`flask users ...`: managing users from a shell (e.g. `heroku run`)."""

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError

from .errors import APIError
from .extensions import db
from .models import ROLES
from .schemas import NewUserSchema
from .sessions import purge_sessions
from .users import create_user

users_cli = AppGroup("users", help="Manage users.")
sessions_cli = AppGroup("sessions", help="Manage login sessions.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="user", show_default=True)
@click.option("--password", help="Prompted for (twice, hidden) when left out.")
@click.option("--name", help="Display name.")
def create_command(username: str, role: str, password: str | None, name: str | None) -> None:
    """Create a user."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        # The same rules as POST /users.
        data = NewUserSchema().load({"username": username, "password": password, "name": name, "role": role})
        user = create_user(username=data["username"], password=data["password"], name=data["name"], role=role)
        db.session.commit()
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.messages.items())
        raise click.ClickException(f"not created: {problems}") from None
    except APIError as exc:
        raise click.ClickException(f"not created: {exc.message}") from None
    click.echo(f"Created {user.role} {user.username!r} with id {user.id}.")


@sessions_cli.command("purge")
def purge_command() -> None:
    """Delete ended and expired sessions (safe to run at any time)."""
    click.echo(f"Deleted {purge_sessions()} ended or expired sessions.")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(sessions_cli)
