"""Remember where each session is used: when it was last refreshed, from which address and User-Agent

So that a user can see their sessions (GET /me/sessions) and end one of
them. The address is the client's as the rate limits see it
(TRUSTED_PROXIES); the User-Agent is cut to 200 characters.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "sessions", sa.Column("last_used_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)
    )
    op.add_column("sessions", sa.Column("ip", sa.String(45), nullable=True))
    op.add_column("sessions", sa.Column("user_agent", sa.String(200), nullable=True))


def downgrade():
    op.drop_column("sessions", "user_agent")
    op.drop_column("sessions", "ip")
    op.drop_column("sessions", "last_used_at")
