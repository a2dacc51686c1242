"""E-mail addresses, one-use link tokens (password reset, address verification), and the mail outbox

Users may have one e-mail address, unique without regard to case, unverified
until its owner follows the link mailed to it. Link tokens are stored only
as their SHA-256. The outbox holds the mails to send and the password-reset
requests to look into, written in the transaction of the change that causes
them, so a rolled-back change sends nothing and a committed one is never lost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("email", sa.String(254), nullable=True))
    op.add_column("users", sa.Column("email_verified", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "link_tokens",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("password_fingerprint", sa.LargeBinary(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_link_tokens_user_id", "link_tokens", ["user_id"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_outbox_due", "outbox", ["due_at"], postgresql_where=sa.text("done_at IS NULL AND gave_up_at IS NULL")
    )
    op.create_index("ix_outbox_user_kind_created", "outbox", ["user_id", "kind", "created_at"])


def downgrade():
    op.drop_table("outbox")
    op.drop_table("link_tokens")
    op.drop_index("uq_users_email_lower", table_name="users")
    op.drop_column("users", "email_verified")
    op.drop_column("users", "email")
