"""Count failed logins per username in PostgreSQL, shared by every worker and instance

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("username_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_username_key_failed_at", "login_failures", ["username_key", "failed_at"])


def downgrade():
    op.drop_index("ix_login_failures_username_key_failed_at", table_name="login_failures")
    op.drop_table("login_failures")
