"""Call records of calls from phones and trunks: a caller role, and no group for a call
between two users or to a number.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite alters a column by copying the table: batch mode does that on every database.
    with op.batch_alter_table("call_records") as batch:
        batch.alter_column("group_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.alter_column("group_id", existing_type=sa.Integer(), nullable=False)
