"""A binding's Path (RFC 3327): the proxies (the cluster's front) a phone is reached through.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("path", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as batch:
        batch.drop_column("path")
