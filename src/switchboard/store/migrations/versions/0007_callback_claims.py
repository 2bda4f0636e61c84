"""Which node last claimed a callback: when a node dies, the node that reaps it hands the
dead node's claims out again at once (issue 16), not after the claim's lease.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("claimed_by")
