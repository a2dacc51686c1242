"""The schema the migrations build agrees with the Python side: the models, the role names, the live-session rule."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from helpers import PASSWORD
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tokenservice.rules.sessions import LIVE_SESSION_USER, LIVE_USER
from tokenservice.rules.users import create_user
from tokenservice.storage.extensions import db
from tokenservice.storage.models import ROLES, USERNAME_INDEX, LoginSession, User


def test_the_migrations_build_what_the_models_declare(app):
    """Tables, columns, types, defaults and indexes, the username index by its name among them."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(context, db.metadata) == []
        index = connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :name AND schemaname = current_schema()"),
            {"name": USERNAME_INDEX},
        ).scalar_one()
    assert "UNIQUE" in index and "lower((username)::text)" in index


def test_the_role_check_allows_exactly_the_role_names(app, database):
    with app.app_context(), pytest.raises(IntegrityError, match="ck_users_role"):
        create_user(username="mallory", password=PASSWORD, role="superuser")
    definition = database.scalar(
        text("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'users'::regclass AND contype = 'c'")
    )
    assert sorted(re.findall(r"'(\w+)'::", definition)) == sorted(ROLES)


def _session(user_id: int, **columns) -> LoginSession:
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    return LoginSession(id=uuid.uuid4(), user_id=user_id, **{"expires_at": expires_at, **columns})


@pytest.fixture
def sessions_in_every_state(app, auth):
    """(user id, session id, expected live) for each way a session can stop working, and a live one."""
    active, inactive = auth.add_user("active"), auth.add_user("inactive", is_active=False)
    past = datetime.now(UTC) - timedelta(seconds=1)
    rows = {
        "live": (_session(active), True),
        "ended": (_session(active, ended_at=past), False),
        "expired": (_session(active, expires_at=past), False),
        "inactive user": (_session(inactive), False),
    }
    with app.app_context():
        db.session.add_all(row for row, _ in rows.values())
        db.session.commit()
        cases = {name: (row.user_id, row.id, live) for name, (row, live) in rows.items()}
    cases["another user's session"] = (inactive, cases["live"][1], False)
    cases["no such session"] = (active, uuid.uuid4(), False)
    return cases


def test_the_sql_function_and_the_python_rule_agree(app, sessions_in_every_state):
    """live_session_user() (migration 0003, the per-request check) and sessions.LIVE_USER say the same."""
    function = text(f"SELECT id FROM {LIVE_SESSION_USER}(:user_id, :session_id)")
    with app.app_context():
        for name, (user_id, session_id, live) in sessions_in_every_state.items():
            by_function = db.session.execute(function, {"user_id": user_id, "session_id": session_id}).all()
            by_python = db.session.execute(
                db.select(User.id)
                .join(LoginSession, LoginSession.user_id == User.id)
                .where(User.id == user_id, LoginSession.id == session_id, LIVE_USER)
            ).all()
            assert (len(by_function), len(by_python)) == ((1, 1) if live else (0, 0)), name
