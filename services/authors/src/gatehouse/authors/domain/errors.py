"""Domain errors, each a member of the one Gatehouse error hierarchy.

``gatehouse.common.errors`` is standard-library only, so subclassing it keeps the
domain framework-free while letting the single problem handler answer them.
"""

from __future__ import annotations

from uuid import UUID

from gatehouse.common.errors import Conflict, NotFound, ValidationFailed


class InvalidAuthor(ValidationFailed):
    """An author whose fields break the domain's rules."""

    code = "invalid_author"


class DuplicateAuthorName(Conflict):
    """Another author already has this name."""

    code = "duplicate_author_name"

    def __init__(self, name: str) -> None:
        super().__init__(f"an author named {name!r} already exists", name=name)


class AuthorNotFound(NotFound):
    code = "author_not_found"

    def __init__(self, author_id: UUID) -> None:
        super().__init__(f"author {author_id} does not exist", id=str(author_id))
