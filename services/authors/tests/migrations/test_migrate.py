from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters.database import create_engine
from gatehouse.authors.migrations import current_revision, head_revision, migrate


async def test_migrate_creates_the_schema_and_is_idempotent(empty_database_url: str) -> None:
    await migrate(empty_database_url)
    await migrate(empty_database_url)

    engine: AsyncEngine = create_engine(empty_database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            revision = await conn.run_sync(current_revision)
    finally:
        await engine.dispose()
    assert {"authors", "books", "outbox", "audit_refusals", "idempotency_keys"} <= tables
    assert revision == head_revision()
