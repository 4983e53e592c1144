"""In-memory adapters of the persistence ports: real implementations for unit tests."""

from __future__ import annotations

from uuid import UUID

from gatehouse.authors.adapters.outbox import AbstractOutbox
from gatehouse.authors.adapters.repository import AbstractAuthorRepository, AuthorQuery
from gatehouse.authors.domain.errors import DuplicateAuthorName
from gatehouse.authors.domain.model import Author
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork
from gatehouse.common.events import CloudEvent


class FakeRepository(AbstractAuthorRepository):
    def __init__(self, authors: list[Author] | None = None) -> None:
        super().__init__()
        self._authors = {author.id: author for author in authors or []}
        self._pending: dict[UUID, Author] = {}

    def keep_pending(self) -> None:
        self._authors.update(self._pending)
        self._pending.clear()

    def drop_pending(self) -> None:
        self._pending.clear()

    async def _add(self, author: Author) -> None:
        if any(other.name == author.name for other in self._all()):
            raise DuplicateAuthorName(author.name)
        self._pending[author.id] = author

    async def _get(self, author_id: UUID) -> Author | None:
        return self._pending.get(author_id) or self._authors.get(author_id)

    def _all(self) -> list[Author]:
        return [*self._authors.values(), *self._pending.values()]

    async def find(self, query: AuthorQuery) -> list[Author]:
        found = sorted(self._matching(query), key=lambda a: (a.created_at, a.id))
        if query.after is not None:
            found = [a for a in found if (a.created_at, a.id) > query.after]
        else:
            found = found[query.offset :]
        return found[: query.limit]

    async def count(self, query: AuthorQuery) -> int:
        return len(self._matching(query))

    def _matching(self, query: AuthorQuery) -> list[Author]:
        found = self._all()
        if query.name is not None:
            found = [a for a in found if a.name == query.name]
        if query.search:
            term = query.search.lower()
            found = [a for a in found if term in a.name.lower() or term in a.bio.lower()]
        return found


class FakeOutbox(AbstractOutbox):
    def __init__(self) -> None:
        self.events: list[CloudEvent] = []

    async def add(self, event: CloudEvent) -> None:
        self.events.append(event)


class FakeUnitOfWork(AbstractUnitOfWork):
    """Keeps what was committed; uncommitted authors and events vanish on rollback."""

    def __init__(self, authors: list[Author] | None = None) -> None:
        self.authors: FakeRepository = FakeRepository(authors)
        self.outbox: FakeOutbox = FakeOutbox()
        self.committed_events: list[CloudEvent] = []
        self.commits = 0

    async def _commit(self) -> None:
        self.committed_events += self.outbox.events
        self.outbox.events = []
        self.authors.keep_pending()
        self.commits += 1

    async def rollback(self) -> None:
        self.outbox.events = []
        self.authors.drop_pending()
