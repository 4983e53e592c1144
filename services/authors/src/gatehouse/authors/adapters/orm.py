"""Tables and the imperative mapping of the domain onto them (the domain stays plain)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry

from gatehouse.authors.domain.model import Author, Book

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
mapper_registry = registry(metadata=metadata)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps that always come back timezone-aware in UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Gatehouse stores UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT keys on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Payload = JSON().with_variant(JSONB(), "postgresql")
# Comparison keys sort by code point on both databases (SQLite's BINARY is that already).
KeyText = Text().with_variant(Text(collation="C"), "postgresql")

authors = Table(
    "authors",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("name", Text(), nullable=False),  # NAME_MAX as sent; NFC may differ a little
    # The UNIQUE constraint on the normalised name, not a pre-check, keeps names unique
    # under races ("Léo" in NFC and NFD, "Octavia Butler" with a zero-width space).
    Column("name_key", KeyText, nullable=False, unique=True),
    Column("bio", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer(), nullable=False),
    Index("ix_authors_created_at_id", "created_at", "id"),
    Index("ix_authors_updated_at_id", "updated_at", "id"),
)

books = Table(
    "books",
    metadata,
    Column("id", Uuid(), primary_key=True),
    # RESTRICT: an author with books cannot be deleted (the service answers 409 first).
    Column("author_id", Uuid(), ForeignKey("authors.id", ondelete="RESTRICT"), nullable=False),
    Column("title", Text(), nullable=False),
    Column("title_key", KeyText, nullable=False),
    Column("year", Integer(), nullable=False),
    Column("isbn", String(13), nullable=True, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer(), nullable=False),
    Index("ix_books_author_id_created_at", "author_id", "created_at", "id"),
    Index("ix_books_created_at_id", "created_at", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(200), nullable=False),
    Column("payload", Payload, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("sequence", BigInteger(), nullable=True, unique=True),
    # The audit trail: who did what, from where, and what changed.
    Column("entity_type", String(32), nullable=True),
    Column("entity_id", String(64), nullable=True),
    Column("action", String(16), nullable=True),
    Column("actor_subject", String(255), nullable=True),
    Column("actor_username", String(255), nullable=True),
    Column("actor_roles", Payload, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("traceparent", String(55), nullable=True),
    Column("changes", Payload, nullable=True),
    Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
    Index("ix_outbox_entity", "entity_type", "entity_id", "id"),
    Index("ix_outbox_actor", "actor_username", "id"),
    Index("ix_outbox_created_at", "created_at"),
)

# Writes that were refused: who tried what, and why (the audit trail; never events).
audit_refusals = Table(
    "audit_refusals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(64), nullable=True),  # none for a refused create
    Column("action", String(16), nullable=False),
    Column("actor_subject", String(255), nullable=True),
    Column("actor_username", String(255), nullable=True),
    Column("actor_roles", Payload, nullable=True),
    Column("request_id", String(128), nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("traceparent", String(55), nullable=True),
    Column("status", Integer(), nullable=False),
    Column("code", String(64), nullable=False),
    Column("fields", Payload, nullable=True),
    Index("ix_audit_refusals_entity", "entity_type", "entity_id", "id"),
    Index("ix_audit_refusals_actor", "actor_username", "id"),
    Index("ix_audit_refusals_created_at", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("subject", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Payload, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

_started = False


def start_mappers() -> None:
    """Map the aggregates onto their tables once per process (idempotent).

    ``version`` is SQLAlchemy's version counter: every UPDATE and DELETE says
    ``WHERE version = <the version read>``, so a concurrent change is detected.
    """
    global _started
    if _started:
        return
    for cls, table in ((Author, authors), (Book, books)):
        mapper_registry.map_imperatively(
            cls, table, version_id_col=table.c.version, version_id_generator=False
        )
        event.listen(cls, "load", _init_events)
    _started = True


def _init_events(aggregate: Author | Book, _context: object) -> None:
    # SQLAlchemy does not call __init__ when it loads a row.
    aggregate.events = []
