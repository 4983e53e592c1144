"""What the message bus can handle: one entry per message, with the roles it needs.

Adding an aggregate's use cases is adding entries here (and its handlers).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gatehouse.authors.adapters.cache import AbstractCache
from gatehouse.authors.domain import commands
from gatehouse.authors.service_layer import handlers, messages, queries
from gatehouse.authors.service_layer.messagebus import Audited, Route
from gatehouse.common.identity import (
    CREATE_AUTHOR,
    DELETE_AUTHOR,
    GET_AUTHORS,
    UPDATE_AUTHOR,
    VIEW_AUDIT_LOGS,
)

READ, CREATE, UPDATE, DELETE = (GET_AUTHORS,), (CREATE_AUTHOR,), (UPDATE_AUTHOR,), (DELETE_AUTHOR,)


def routes(cache: AbstractCache) -> dict[type[Any], Route]:
    return {
        commands.CreateAuthor: Route(handlers.create_author, CREATE, Audited("author", "created")),
        commands.ReplaceAuthor: Route(
            handlers.replace_author, UPDATE, Audited("author", "updated")
        ),
        commands.PatchAuthor: Route(handlers.patch_author, UPDATE, Audited("author", "updated")),
        commands.DeleteAuthor: Route(handlers.delete_author, DELETE, Audited("author", "deleted")),
        commands.CreateBook: Route(handlers.create_book, CREATE, Audited("book", "created")),
        commands.ReplaceBook: Route(handlers.replace_book, UPDATE, Audited("book", "updated")),
        commands.PatchBook: Route(handlers.patch_book, UPDATE, Audited("book", "updated")),
        commands.DeleteBook: Route(handlers.delete_book, DELETE, Audited("book", "deleted")),
        messages.GetAuthor: Route(partial(queries.get_author, cache=cache), READ),
        messages.ListAuthors: Route(queries.list_authors, READ),
        messages.GetBook: Route(partial(queries.get_book, cache=cache), READ),
        messages.ListBooks: Route(queries.list_books, READ),
        messages.ListAudit: Route(queries.list_audit, (VIEW_AUDIT_LOGS,)),
    }
