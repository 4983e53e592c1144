"""Failed-login counters shared by every replica (the login throttle).

Revision ID: core_login_failures
Revises: admin_revocations
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "core_login_failures"
down_revision: str | None = "admin_revocations"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "auth_login_failures",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_auth_login_failures"),
    )
    op.create_index("ix_auth_login_failures_last_at", "auth_login_failures", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_login_failures_last_at", "auth_login_failures")
    op.drop_table("auth_login_failures")
