"""Users and their roles, and the audit trail (and outbox) of the admin API.

Revision ID: admin_users
Revises: core_refresh_grace
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "admin_users"
down_revision: str | None = "core_refresh_grace"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("seeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_auth_users"),
        sa.UniqueConstraint("subject", name="uq_auth_users_subject"),
    )
    op.create_table(
        "auth_user_roles",
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["username"],
            ["auth_users.username"],
            name="fk_auth_user_roles_username_auth_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("username", "role", name="pk_auth_user_roles"),
    )
    op.create_table(
        "auth_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("actor_subject", sa.String(64), nullable=False),
        sa.Column("actor_roles", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(512), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(512), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("published_at", sa.Double(), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_audit"),
        sa.UniqueConstraint("event_id", name="uq_auth_audit_event_id"),
    )
    op.create_index("ix_auth_audit_at", "auth_audit", ["at"])
    op.create_index("ix_auth_audit_published_at", "auth_audit", ["published_at"])
    sequence = op.create_table(
        "auth_event_sequence",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_auth_event_sequence"),
    )
    op.bulk_insert(sequence, [{"source": "/gatehouse/auth", "value": 0}])


def downgrade() -> None:
    op.drop_table("auth_event_sequence")
    op.drop_index("ix_auth_audit_published_at", "auth_audit")
    op.drop_index("ix_auth_audit_at", "auth_audit")
    op.drop_table("auth_audit")
    op.drop_table("auth_user_roles")
    op.drop_table("auth_users")
