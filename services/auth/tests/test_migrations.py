from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from gatehouse.auth.database import create_engine
from gatehouse.auth.migrations import current_revision, head_revision, migrate


async def test_migrate_creates_the_schema_and_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await asyncio.gather(migrate(engine), migrate(engine))  # replicas starting together
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            revision = await conn.run_sync(current_revision)
    finally:
        await engine.dispose()
    assert {"auth_sessions", "auth_retired_tokens", "auth_signing_keys"} <= tables
    assert "auth_alembic_version" in tables  # apart from the authors service's, if they share
    assert revision == head_revision()
