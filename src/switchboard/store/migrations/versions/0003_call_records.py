"""Call records: one row per channel of a finished call.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_records",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(64), nullable=False, unique=True),
        sa.Column("domain", sa.String(253), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("party", sa.String(255), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("other_uuid", sa.String(64)),
        sa.Column("offered_at", sa.Float()),
        sa.Column("answered_at", sa.Float()),
        sa.Column("ended_at", sa.Float()),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("hangup", sa.String(64), nullable=False),
        sa.Column("end_user", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("call_records")
