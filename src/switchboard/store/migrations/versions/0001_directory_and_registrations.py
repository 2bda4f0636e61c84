"""Directory tables (domains, users, groups, trunks) and registrations.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(253), nullable=False, unique=True),
        sa.Column("channel_limit", sa.Integer(), nullable=False),
        sa.Column("calling_number", sa.String(32)),
        sa.Column("pstn_prefixes", sa.Text(), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "domain_pk",
            sa.Integer(),
            sa.ForeignKey("domains.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("extension", sa.String(32)),
        sa.Column("did", sa.String(32)),
        sa.Column("email", sa.String(255)),
        sa.Column("static_contacts", sa.Text(), nullable=False),
        sa.UniqueConstraint("domain_pk", "name"),
        sa.UniqueConstraint("domain_pk", "user_id"),
    )
    op.create_table(
        "groups",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "domain_pk",
            sa.Integer(),
            sa.ForeignKey("domains.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("label", sa.String(255), nullable=False),
        sa.Column("extension", sa.String(32)),
        sa.Column("did", sa.String(32)),
        sa.Column("strategy", sa.String(8), nullable=False),
        sa.Column("answer_timeout", sa.Integer(), nullable=False),
        sa.Column("member_answer_timeout", sa.Integer(), nullable=False),
        sa.Column("members", sa.Text(), nullable=False),
        sa.UniqueConstraint("domain_pk", "name"),
        sa.UniqueConstraint("domain_pk", "group_id"),
    )
    op.create_table(
        "trunks",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "domain_pk",
            sa.Integer(),
            sa.ForeignKey("domains.pk", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.UniqueConstraint("domain_pk", "name"),
    )
    op.create_table(
        "registrations",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(253), nullable=False, index=True),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("q", sa.String(8)),
        sa.Column("expires_at", sa.Float(), nullable=False, index=True),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("cseq", sa.Integer(), nullable=False),
        sa.Column("received", sa.String(300), nullable=False),
        sa.Column("user_agent", sa.String(255), nullable=False),
        sa.UniqueConstraint("domain", "user", "contact"),
    )


def downgrade() -> None:
    for table in ("registrations", "trunks", "groups", "users", "domains"):
        op.drop_table(table)
