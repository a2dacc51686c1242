"""A second factor (TOTP with recovery codes), how each session proved itself, and sign-in alert links

Each user may hold a TOTP secret, encrypted under MFA_KEY, that is on once
confirmed; the last time step a code was accepted for makes every code
single-use across workers and instances. Recovery codes are stored only as
their SHA-256. A session records how its login proved itself (RFC 8176
`amr`), which its tokens carry. A sign-in alert's link token names the
session it can end.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("totp_secret", sa.LargeBinary(), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])
    op.add_column(
        "sessions",
        sa.Column("amr", postgresql.ARRAY(sa.String(8)), server_default=sa.text("'{pwd}'"), nullable=False),
    )
    op.add_column(
        "link_tokens",
        sa.Column("session_id", sa.Uuid(), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True),
    )
    # Deleting a session (flask sessions purge) looks for its alert tokens by this index, not by a scan.
    op.create_index(
        "ix_link_tokens_session_id", "link_tokens", ["session_id"], postgresql_where=sa.text("session_id IS NOT NULL")
    )


def downgrade():
    op.drop_index("ix_link_tokens_session_id", "link_tokens")
    op.drop_column("link_tokens", "session_id")
    op.drop_column("sessions", "amr")
    op.drop_index("ix_recovery_codes_user_id", "recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "totp_enabled_at")
    op.drop_column("users", "totp_secret")
