"""The refresh grace window: when a refresh token was replaced, by which, and the sealed
answer kept for a retry.

Revision ID: core_refresh_grace
Revises: core_login_failures
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_refresh_grace"
down_revision: str | None = "core_login_failures"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("auth_retired_tokens", sa.Column("retired_at", sa.Double(), nullable=True))
    op.add_column("auth_retired_tokens", sa.Column("successor", sa.String(64), nullable=True))
    op.add_column("auth_retired_tokens", sa.Column("sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_retired_tokens") as batch:
        batch.drop_column("sealed")
        batch.drop_column("successor")
        batch.drop_column("retired_at")
