"""Books, normalised author names, the audit half of the outbox, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from gatehouse.authors.adapters.orm import KeyText, Payload, UTCDateTime
from gatehouse.authors.domain.text import key

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

AUDIT_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("entity_type", sa.String(32)),
    ("entity_id", sa.String(64)),
    ("action", sa.String(16)),
    ("actor_subject", sa.String(255)),
    ("actor_username", sa.String(255)),
    ("actor_roles", Payload),
    ("request_id", sa.String(128)),
    ("client_ip", sa.String(64)),
    ("user_agent", sa.String(512)),
    ("traceparent", sa.String(55)),
    ("changes", Payload),
)


def upgrade() -> None:
    _normalised_names()
    op.create_table(
        "books",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_key", KeyText, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("isbn", sa.String(13), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_books"),
        sa.ForeignKeyConstraint(
            ["author_id"], ["authors.id"], name="fk_books_author_id_authors", ondelete="RESTRICT"
        ),
        sa.UniqueConstraint("isbn", name="uq_books_isbn"),
    )
    op.create_index("ix_books_author_id_created_at", "books", ["author_id", "created_at", "id"])
    op.create_index("ix_books_created_at_id", "books", ["created_at", "id"])
    with op.batch_alter_table("outbox") as batch:
        for name, type_ in AUDIT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_index("ix_outbox_entity", "outbox", ["entity_type", "entity_id", "id"])
    op.create_index("ix_outbox_actor", "outbox", ["actor_username", "id"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", Payload, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def _normalised_names() -> None:
    """Add ``name_key`` (filled from the names already there) and move the UNIQUE onto it."""
    with op.batch_alter_table("authors") as batch:
        batch.add_column(sa.Column("name_key", KeyText, nullable=True))
    bind = op.get_bind()
    authors = sa.table("authors", sa.column("id"), sa.column("name"), sa.column("name_key"))
    taken: set[str] = set()
    for row in bind.execute(sa.select(authors.c.id, authors.c.name)).all():
        name_key = key(row.name)
        if name_key in taken:  # names the old exact-match rule let through: keep both
            name_key = f"{name_key} #{row.id}"
        taken.add(name_key)
        bind.execute(authors.update().where(authors.c.id == row.id).values(name_key=name_key))
    with op.batch_alter_table("authors") as batch:
        batch.alter_column("name_key", existing_type=KeyText, nullable=False)
        batch.alter_column("name", existing_type=sa.String(200), type_=sa.Text())
        batch.drop_constraint("uq_authors_name", type_="unique")
        batch.create_unique_constraint("uq_authors_name_key", ["name_key"])
    op.create_index("ix_authors_updated_at_id", "authors", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_index("ix_outbox_actor", "outbox")
    op.drop_index("ix_outbox_entity", "outbox")
    with op.batch_alter_table("outbox") as batch:
        for name, _ in AUDIT_COLUMNS:
            batch.drop_column(name)
    op.drop_table("books")
    op.drop_index("ix_authors_updated_at_id", "authors")
    with op.batch_alter_table("authors") as batch:
        batch.drop_constraint("uq_authors_name_key", type_="unique")
        batch.create_unique_constraint("uq_authors_name", ["name"])
        batch.drop_column("name_key")
        batch.alter_column("name", existing_type=sa.Text(), type_=sa.String(200))
