"""The unit of work: one transaction, its repositories, and the outbox of their events."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse.authors.adapters.idempotency import (
    AbstractIdempotencyStore,
    SqlAlchemyIdempotencyStore,
)
from gatehouse.authors.adapters.outbox import AbstractOutbox, SqlAlchemyOutbox
from gatehouse.authors.adapters.repository import (
    AbstractAuthorRepository,
    AbstractBookRepository,
    AbstractRepository,
    SqlAlchemyAuthorRepository,
    SqlAlchemyBookRepository,
)
from gatehouse.authors.domain.events import Event
from gatehouse.authors.service_layer.cloudevents import to_audit_entry, to_cloud_event
from gatehouse.authors.service_layer.context import RequestContext

CommitHook = Callable[[Sequence[Event]], Awaitable[None]]


class AbstractUnitOfWork(abc.ABC):
    """``async with uow:`` opens it; ``commit()`` writes the changes and their events together.

    Leaving the block without ``commit()`` rolls everything back. The events of
    every repository the unit holds go to the outbox, each with the audit entry of
    ``context`` (who, from where), in the same transaction.
    """

    authors: AbstractAuthorRepository
    books: AbstractBookRepository
    outbox: AbstractOutbox
    idempotency: AbstractIdempotencyStore
    context: RequestContext

    def __init__(self, context: RequestContext | None = None) -> None:
        self.context = context or RequestContext(principal=None)
        self.committed: list[Event] = []

    @property
    def repositories(self) -> tuple[AbstractRepository[Any], ...]:
        return (self.authors, self.books)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    async def commit(self) -> None:
        """Append every new domain event to the outbox, then commit, in one transaction."""
        new = list(self._collect_new_events())
        for event in new:
            await self.outbox.add(
                to_cloud_event(event, self.context), to_audit_entry(event, self.context)
            )
        await self._commit()
        self.committed += new

    def _collect_new_events(self) -> Iterator[Event]:
        for repository in self.repositories:
            for aggregate in repository.seen:
                while aggregate.events:
                    yield aggregate.events.pop(0)

    @abc.abstractmethod
    async def _commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    """One ``AsyncSession`` per ``async with``; ``on_commit`` gets the events of each commit
    (the app wakes the outbox relay and refreshes its cache with them)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        context: RequestContext | None = None,
        *,
        on_commit: CommitHook | None = None,
    ) -> None:
        super().__init__(context)
        self._sessions = sessions
        self._on_commit = on_commit
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self.authors = SqlAlchemyAuthorRepository(self._session)
        self.books = SqlAlchemyBookRepository(self._session)
        self.outbox = SqlAlchemyOutbox(self._session)
        self.idempotency = SqlAlchemyIdempotencyStore(self._session)
        return await super().__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back what was not committed, and unlike rollback() it leaves the
        # loaded objects readable (detached, not expired) for the caller.
        await self.session.close()
        self._session = None

    @property
    def session(self) -> AsyncSession:
        assert self._session is not None, "use the unit of work inside `async with`"
        return self._session

    async def _commit(self) -> None:
        await self.session.commit()

    async def commit(self) -> None:
        before = len(self.committed)
        await super().commit()
        if self._on_commit is not None:
            await self._on_commit(self.committed[before:])

    async def rollback(self) -> None:
        await self.session.rollback()
