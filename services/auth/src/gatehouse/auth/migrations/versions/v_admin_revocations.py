"""Revocation items of sessions and subjects, read by the gateway.

Revision ID: admin_revocations
Revises: keys_activation
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "admin_revocations"
down_revision: str | None = "keys_activation"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "auth_revocations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ident", sa.String(255), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_revocations"),
    )
    op.create_index("ix_auth_revocations_revoked_at", "auth_revocations", ["revoked_at"])
    op.create_index("ix_auth_revocations_expires_at", "auth_revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_revocations_expires_at", "auth_revocations")
    op.drop_index("ix_auth_revocations_revoked_at", "auth_revocations")
    op.drop_table("auth_revocations")
