"""Count failed logins of a proven client apart from strangers', so that guessing cannot lock the owner out

A failed login used to count against its username, whoever sent it: ten
wrong passwords from anywhere refused the right one for 15 minutes. Now each
failure also records whose allowance it drew on: NULL for strangers, or the
device (the device_token of an earlier successful login) or the session (a
password change) that proved itself.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("login_failures", sa.Column("bucket", sa.Uuid(), nullable=True))


def downgrade():
    op.drop_column("login_failures", "bucket")
