"""Remember each session's retired refresh token, for rotation with reuse detection

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("sessions", sa.Column("previous_refresh_jti", sa.Uuid(), nullable=True))
    op.add_column("sessions", sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("sessions", "rotated_at")
    op.drop_column("sessions", "previous_refresh_jti")
