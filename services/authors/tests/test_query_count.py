"""Lists issue a fixed number of SQL statements, whatever the page size (no N+1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from gatehouse.authors.domain.model import Author, Book
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.identity import Principal

Auth = Callable[..., dict[str, str]]


@contextmanager
def counting(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.state.services.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def settings(settings: AuthorsSettings) -> AuthorsSettings:
    """No relay: its polling would be counted with the requests."""
    return settings.model_copy(update={"run_relay": False})


async def seed(app: FastAPI, count: int) -> str:
    """``count`` authors, and ``count`` books of the first, in one transaction."""
    services = app.state.services
    context = RequestContext(Principal("s", "seed", frozenset({"admin"})))
    async with services.unit_of_work(context, writes=True) as uow:
        authors = [Author.create(f"Author {i}") for i in range(count)]
        for author in authors:
            await uow.authors.add(author)
        for i in range(count):
            await uow.books.add(Book.create(authors[0].id, f"Title {i}", 2000))
        await uow.commit()
    return str(authors[0].id)


PATHS = ("/v1/authors", "/v1/books", "/v1/authors/{author}/books", "/v1/audit")


async def test_a_list_costs_the_same_statements_for_1_10_or_100_rows(
    app: FastAPI, client: httpx.AsyncClient, auth: Auth
) -> None:
    headers = auth("admin")
    author = await seed(app, 110)  # once for every list: seeding is most of the cost
    await client.get("/v1/authors", headers=headers)  # the pool opens its connection first

    for path in PATHS:
        url = path.format(author=author)
        size = "limit" if path == "/v1/audit" else "per_page"
        counts = []
        for rows in (1, 10, 100):
            with counting(app) as statements:
                listed = await client.get(f"{url}?{size}={rows}", headers=headers)
            assert listed.status_code == 200
            assert len(listed.json()["data"]) == rows
            counts.append(len(statements))
            queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]

        assert counts[0] == counts[1] == counts[2], (path, counts)
        # the page, its total (and the author for a sub-list)
        assert len(queries) <= 3, (path, queries)
