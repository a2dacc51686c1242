"""`flask users ...`, `flask clients ...`, `flask sessions ...`, `flask mail ...`: administration from a shell.

Each command applies the same rules as the HTTP API, through the same
functions; a refusal (rules/exceptions.py) exits 1 with its sentence.
"""

import contextlib
import os
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError

from .mail import sender
from .rules import clients
from .rules.exceptions import Refusal
from .rules.login_failures import purge_failures, unlock
from .rules.password_reset import reset_link
from .rules.sessions import purge_sessions
from .rules.users import (
    create_user,
    expire_legacy_hashes,
    find_user_by_username,
    legacy_hash_users,
    list_users,
    remove_second_factor,
    update_user,
)
from .storage.extensions import db
from .storage.models import ROLES, USER, User
from .web.schemas import NewUserSchema

users_cli = AppGroup("users", help="Manage users.")
sessions_cli = AppGroup("sessions", help="Manage login sessions.")
keys_cli = AppGroup("keys", help="Signing keys for RS256 and ES256.")
mail_cli = AppGroup("mail", help="The mail outbox.")
clients_cli = AppGroup("clients", help="Credentials for machines (grant_type=client_credentials).")

PROMPT_HELP = "Prompted for (twice, hidden) when left out."


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default=USER, show_default=True)
@click.option("--password", help=PROMPT_HELP)
@click.option("--name", help="Display name.")
def create_command(username: str, role: str, password: str | None, name: str | None) -> None:
    """Create a user (the way to make the first admin)."""
    if password is None:
        password = _prompt_password()
    with _refusals("not created"):
        # The same rules as POST /users.
        data = NewUserSchema().load({"username": username, "password": password, "name": name, "role": role})
        user = create_user(**data)
        db.session.commit()
    click.echo(f"Created {user.role} {user.username!r} with id {user.id}.")


@users_cli.command("list")
def list_command() -> None:
    """List every user."""
    users, total = list_users(page=1, per_page=1_000_000)
    click.echo(f"{'id':>6}  {'username':<64}  {'role':<5}  active")
    for user in users:
        click.echo(f"{user.id:>6}  {user.username:<64}  {user.role:<5}  {'yes' if user.is_active else 'no'}")
    click.echo(f"{total} user(s).")


@users_cli.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def set_role_command(username: str, role: str) -> None:
    """Make a user an admin or a plain user; their sessions end."""
    with _refusals("role not changed"):
        user = update_user(user=_existing(username), changes={"role": role})
        db.session.commit()
    click.echo(f"{user.username!r} is now {role}; their sessions have ended.")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate_command(username: str) -> None:
    """Stop a user from logging in; their sessions end."""
    with _refusals("not deactivated"):
        user = update_user(user=_existing(username), changes={"is_active": False})
        db.session.commit()
    click.echo(f"Deactivated {user.username!r}; their sessions have ended.")


@users_cli.command("reset-password")
@click.argument("username")
@click.option("--password", help=PROMPT_HELP)
def reset_password_command(username: str, password: str | None) -> None:
    """Set a user's password; their sessions end."""
    user = _existing(username)
    if password is None:
        password = _prompt_password()
    with _refusals("password not changed"):
        update_user(user=user, changes={"password": password})
        db.session.commit()
    click.echo(f"Changed the password of {user.username!r}; their sessions have ended.")


@users_cli.command("reset-link")
@click.argument("username")
def reset_link_command(username: str) -> None:
    """Print a one-use password-reset link (30 minutes) to pass on to the user, e.g. without a mail server."""
    link = reset_link(_existing(username))
    if link is None:
        raise click.ClickException("Set PUBLIC_URL (or PASSWORD_RESET_URL): the link needs somewhere to point.")
    db.session.commit()
    click.echo(link)


@users_cli.command("remove-mfa")
@click.argument("username")
def remove_mfa_command(username: str) -> None:
    """Remove a user's second factor (they lost it): their sessions end, and their verified address is told."""
    user = _existing(username)
    with _refusals("second factor not removed"):
        remove_second_factor(user=user)
        db.session.commit()
    click.echo(f"Removed the second factor of {user.username!r}; their sessions have ended.")


@users_cli.command("unlock")
@click.argument("username")
def unlock_command(username: str) -> None:
    """Clear a username's failed logins (LOGIN_FAILURE_LIMIT), strangers' and devices' alike."""
    cleared = unlock(username)
    db.session.commit()
    click.echo(f"Cleared {cleared} failed login(s) of {username!r}.")


@users_cli.command("legacy-hashes")
@click.option("--expire", is_flag=True, help="Make those passwords unusable and end those users' sessions.")
def legacy_hashes_command(expire: bool) -> None:
    """List users whose password hash is still Werkzeug's (pbkdf2, scrypt).

    Checking such a hash takes several times as long as Argon2id, so the time
    of a wrong-password answer tells these users apart; each one's next login
    re-hashes it. --expire ends that exposure now: they log in again after
    `flask users reset-password`.
    """
    users = expire_legacy_hashes() if expire else legacy_hash_users()
    for user in users:
        click.echo(f"{user.id:>6}  {user.username}")
    if expire:
        db.session.commit()
        click.echo(f"Expired the legacy password hashes of {len(users)} user(s); their sessions have ended.")
    else:
        click.echo(f"{len(users)} user(s) with a legacy password hash.")


@clients_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(clients.SCOPES))
def create_client_command(name: str, scopes: tuple[str, ...]) -> None:
    """Create a client; prints its id and its secret, which is shown only this once."""
    with _refusals("client not created"):
        new = clients.create_client(name=name, scopes=list(scopes))
        db.session.commit()
    click.echo(
        f"client_id:     {new.client.id}\nclient_secret: {new.secret}\nscopes:        {' '.join(new.client.scopes)}"
    )
    click.echo("Keep the secret now: only its hash is stored.", err=True)


@clients_cli.command("list")
def list_clients_command() -> None:
    """id, name, scopes, active."""
    for client in clients.list_clients():
        click.echo(
            f"{client.id}\t{client.name}\t{' '.join(client.scopes)}\t{'active' if client.is_active else 'disabled'}"
        )


@clients_cli.command("disable")
@click.argument("client_id")
def disable_client_command(client_id: str) -> None:
    """Disable a client: its tokens stop at once."""
    with _refusals("client not disabled"):
        clients.set_active(clients.get_client(client_id), False)
        db.session.commit()
    click.echo(f"Disabled {client_id}; its tokens have stopped.")


@clients_cli.command("delete")
@click.argument("client_id")
def delete_client_command(client_id: str) -> None:
    """Delete a client: its tokens stop at once."""
    with _refusals("client not deleted"):
        clients.delete_client(clients.get_client(client_id))
        db.session.commit()
    click.echo(f"Deleted {client_id}; its tokens have stopped.")


@sessions_cli.command("purge")
def purge_command() -> None:
    """Delete ended and expired sessions and client tokens, and failed logins that no longer count (any time)."""
    click.echo(f"Deleted {purge_sessions()} ended or expired sessions.")
    click.echo(f"Deleted {clients.purge_client_tokens()} ended or expired client tokens.")
    click.echo(f"Deleted {purge_failures()} failed logins older than LOGIN_FAILURE_LIMIT's window.")


@mail_cli.command("send")
def send_mail_command() -> None:
    """Send the outbox's due mails once, as each web worker's sender does (for a worker dyno or a scheduler)."""
    outcomes = sender.send_due()
    click.echo(
        f"Looked into {outcomes['requests']} reset request(s); sent {outcomes['sent']} mail(s), "
        f"{outcomes['failed']} to try again, {outcomes['given_up']} given up."
    )


@keys_cli.command("generate")
@click.option("--alg", "algorithm", type=click.Choice(["RS256", "ES256"]), required=True)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default="instance/keys")
def generate_keys_command(algorithm: str, directory: Path) -> None:
    """Write a new key pair (never over an existing file) and say how to configure it, or rotate to it."""
    from .tokens.key_pairs import generate

    private_pem, public_pem, kid = generate(algorithm)
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / f"{algorithm.lower()}-{kid[:12]}-private.pem"
    public_path = directory / f"{algorithm.lower()}-{kid[:12]}-public.pem"
    for path, content, mode in ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644)):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise click.ClickException(f"{path} exists already; nothing was overwritten.") from None
        with os.fdopen(fd, "wb") as file:
            file.write(content)
    click.echo(
        f"""Wrote a new {algorithm} key pair, kid {kid}:
  private key: {private_path}  (keep it secret; never commit it)
  public key:  {public_path}

To sign tokens with it, set:
  JWT_ALGORITHM={algorithm}
  JWT_PRIVATE_KEY={private_path}
  JWT_PUBLIC_KEY={public_path}
On Heroku, set the PEM text itself:
  heroku config:set JWT_ALGORITHM={algorithm} JWT_PRIVATE_KEY="$(cat {private_path})" \\
    JWT_PUBLIC_KEY="$(cat {public_path})"

To rotate to it from the pair in use now, in two steps (nobody is logged out):
1. Publish it first: add {public_path} to JWT_PREVIOUS_PUBLIC_KEYS,
   keep signing with the old pair, and wait at least 5 minutes (how long
   other services may keep the published keys).
2. Set the new pair above, and put the old public key in
   JWT_PREVIOUS_PUBLIC_KEYS instead. Keep it there for JWT_REFRESH_TOKEN_EXPIRES
   (30 days by default): tokens it signed are accepted until they expire, and
   refresh tokens come back signed with the new key."""
    )


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(clients_cli)


def _prompt_password() -> str:
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _existing(username: str) -> User:
    user = find_user_by_username(username)
    if user is None:
        raise click.ClickException(f"there is no user named {username!r}.")
    return user


@contextlib.contextmanager
def _refusals(outcome: str):
    """Turn a refusal of the rules into a ClickException: a message and exit status 1."""
    try:
        yield
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.normalized_messages().items())
        raise click.ClickException(f"{outcome}: {problems}") from None
    except Refusal as exc:
        details = "".join(f" ({field}: {problem})" for field, problem in (exc.fields or {}).items())
        raise click.ClickException(f"{outcome}: {exc.message}{details}") from None
