"""Clients: machines with their own credentials, and their access tokens

A client's secret is stored only as its SHA-256 (it is 256 random bits: no
dictionary to try). Each access token a client is given is a row, so that
it can be revoked alone, and so that disabling or deleting the client stops
every token at once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "clients",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "client_tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_client_tokens_client_id", "client_tokens", ["client_id"])


def downgrade():
    op.drop_index("ix_client_tokens_client_id", "client_tokens")
    op.drop_table("client_tokens")
    op.drop_table("clients")
