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

from gatehouse.authors.domain.model import NAME_MAX, Author

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
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

authors = Table(
    "authors",
    metadata,
    Column("id", Uuid(), primary_key=True),
    # The UNIQUE constraint, not a pre-check, is what keeps names unique under races.
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("bio", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer(), nullable=False),
    Index("ix_authors_created_at_id", "created_at", "id"),
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
    Index(
        "ix_outbox_unsent",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
)

_started = False


def start_mappers() -> None:
    """Map ``Author`` onto ``authors`` once per process (idempotent)."""
    global _started
    if _started:
        return
    mapper_registry.map_imperatively(Author, authors)
    event.listen(Author, "load", _init_events)
    _started = True


def _init_events(author: Author, _context: object) -> None:
    # SQLAlchemy does not call __init__ when it loads a row.
    author.events = []
