"""Check a guarded request's session and user in a plpgsql function, whose plan PostgreSQL caches

Every guarded request runs this lookup. As a plain statement PostgreSQL plans
the two-table query afresh each time, which cost more than running it and
made /protected slower than the baseline snippet's one-table SELECT. A plpgsql function
keeps its plan per connection, and unlike PREPARE it works through
transaction-pooling PgBouncer (Heroku's connection pooling).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE FUNCTION live_session_user(p_user_id integer, p_session_id uuid)
        RETURNS SETOF users
        LANGUAGE plpgsql STABLE
        AS $$
        BEGIN
            -- The user of a live session: not ended, not expired, user active.
            RETURN QUERY
            SELECT users.*
            FROM users JOIN sessions ON sessions.user_id = users.id
            WHERE users.id = p_user_id
              AND users.is_active
              AND sessions.id = p_session_id
              AND sessions.ended_at IS NULL
              AND sessions.expires_at > now();
        END
        $$
        """
    )


def downgrade():
    op.execute("DROP FUNCTION live_session_user(integer, uuid)")
