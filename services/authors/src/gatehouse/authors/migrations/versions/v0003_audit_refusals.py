"""The refused half of the audit trail: writes that were refused, who tried them, and why.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gatehouse.authors.adapters.orm import BigId, Payload, UTCDateTime

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_refusals",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor_subject", sa.String(255), nullable=True),
        sa.Column("actor_username", sa.String(255), nullable=True),
        sa.Column("actor_roles", Payload, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("traceparent", sa.String(55), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("fields", Payload, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_refusals"),
    )
    op.create_index(
        "ix_audit_refusals_entity", "audit_refusals", ["entity_type", "entity_id", "id"]
    )
    op.create_index("ix_audit_refusals_actor", "audit_refusals", ["actor_username", "id"])
    op.create_index("ix_audit_refusals_created_at", "audit_refusals", ["created_at"])


def downgrade() -> None:
    op.drop_table("audit_refusals")
