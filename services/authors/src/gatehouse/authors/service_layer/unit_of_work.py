"""The unit of work: one transaction, its repositories, and the outbox of its events."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse.authors.adapters.outbox import AbstractOutbox, SqlAlchemyOutbox
from gatehouse.authors.adapters.repository import (
    AbstractAuthorRepository,
    SqlAlchemyAuthorRepository,
)
from gatehouse.authors.domain.events import Event
from gatehouse.authors.service_layer.cloudevents import to_cloud_event


class AbstractUnitOfWork(abc.ABC):
    """``async with uow:`` opens it; ``commit()`` writes the changes and their events together.

    Leaving the block without ``commit()`` rolls everything back.
    """

    authors: AbstractAuthorRepository
    outbox: AbstractOutbox

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
        for event in self._collect_new_events():
            await self.outbox.add(to_cloud_event(event))
        await self._commit()

    def _collect_new_events(self) -> Iterator[Event]:
        for author in self.authors.seen:
            while author.events:
                yield author.events.pop(0)

    @abc.abstractmethod
    async def _commit(self) -> None: ...

    @abc.abstractmethod
    async def rollback(self) -> None: ...


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    """One ``AsyncSession`` per ``async with``; ``on_commit`` runs after each commit
    (the app uses it to wake the outbox relay at once instead of at its next poll)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_commit = on_commit
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self._session = self._sessions()
        self.authors = SqlAlchemyAuthorRepository(self._session)
        self.outbox = SqlAlchemyOutbox(self._session)
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
        if self._on_commit is not None:
            self._on_commit()

    async def rollback(self) -> None:
        await self.session.rollback()
