"""Alembic environment: runs on the connection :func:`migrate` hands over, or on ``-x url=``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from gatehouse.auth.database import create_engine
from gatehouse.auth.tables import VERSION_TABLE, metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=<GATEHOUSE_AUTH_DATABASE_URL> ...")
    asyncio.run(run_from_url(url))


main()
