"""Tell listening workers when a session ends or a user changes, so they may keep live sessions in memory

Each worker keeps the live sessions it has seen (session_cache.py) and
forgets one when PostgreSQL says it changed. Triggers, not the app, send the
notices, so every way of changing the rows (the API, the CLI, an operator's
SQL) is covered. A notice is delivered when its transaction commits.

- a session that ends (ended_at set) or a live session deleted: 's:<session id>';
- a user updated or deleted: 'u:<user id>'.

A refresh (which moves expires_at and the refresh token ids) and a purge of
sessions that can no longer be used send nothing: they change no answer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE FUNCTION notify_session_ended() RETURNS trigger
        LANGUAGE plpgsql
        AS $$
        BEGIN
            PERFORM pg_notify('tokenservice_live', 's:' || OLD.id::text);
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER session_ended
        AFTER UPDATE OF ended_at ON sessions
        FOR EACH ROW WHEN (OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL)
        EXECUTE FUNCTION notify_session_ended();

        CREATE TRIGGER live_session_deleted
        AFTER DELETE ON sessions
        FOR EACH ROW WHEN (OLD.ended_at IS NULL AND OLD.expires_at > now())
        EXECUTE FUNCTION notify_session_ended();

        CREATE FUNCTION notify_user_changed() RETURNS trigger
        LANGUAGE plpgsql
        AS $$
        BEGIN
            PERFORM pg_notify('tokenservice_live', 'u:' || OLD.id::text);
            RETURN NULL;
        END
        $$;

        CREATE TRIGGER user_changed
        AFTER UPDATE OR DELETE ON users
        FOR EACH ROW EXECUTE FUNCTION notify_user_changed();
        """
    )


def downgrade():
    op.execute(
        """
        DROP TRIGGER user_changed ON users;
        DROP FUNCTION notify_user_changed();
        DROP TRIGGER live_session_deleted ON sessions;
        DROP TRIGGER session_ended ON sessions;
        DROP FUNCTION notify_session_ended();
        """
    )
