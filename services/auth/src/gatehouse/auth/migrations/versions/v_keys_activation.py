"""Signing keys activate at a given time: the key ring publishes a key before it signs.

Revision ID: keys_activation
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "keys_activation"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable, no default: rows of 0001 activate at their created_at (the code reads
    # NULL so), and replicas of the previous release keep inserting without it.
    op.add_column("auth_signing_keys", sa.Column("activates_at", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_signing_keys") as batch:
        batch.drop_column("activates_at")
