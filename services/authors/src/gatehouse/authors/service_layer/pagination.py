"""Lists: the sort allow-list, offset and keyset (cursor) pages, and their bounds.

Every list is ordered by a full key (the requested sort, then the id), so a
keyset page never skips or repeats a row while others are inserted. A cursor
names the sort it was made for and the position of the last row; it is
url-safe base64 of JSON, and anything else is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from gatehouse.authors.adapters.repository import Slice, SortKey
from gatehouse.authors.service_layer.errors import InvalidParameter
from gatehouse.authors.service_layer.messages import Window

MAX_PER_PAGE = 100
MAX_PAGE = 10_000
MAX_SORT_FIELDS = 3
CURSOR_MAX = 1024
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,1024}$"


@dataclass(frozen=True, slots=True)
class Sortable:
    """A field a client may sort by: the aggregate attribute behind it and its kind."""

    attribute: str
    kind: type[Any]


AUTHOR_SORTS = {
    "name": Sortable("name_key", str),
    "created_at": Sortable("created_at", datetime),
    "updated_at": Sortable("updated_at", datetime),
}
BOOK_SORTS = {
    "title": Sortable("title_key", str),
    "year": Sortable("year", int),
    "created_at": Sortable("created_at", datetime),
    "updated_at": Sortable("updated_at", datetime),
}
DEFAULT_SORT = "created_at"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of resources (JSON-ready) with the ``meta`` of the template."""

    items: list[dict[str, Any]]
    page: int | None
    per_page: int
    total: int
    next_cursor: str | None

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.per_page else 0

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None

    def meta(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "total": self.total,
            "pages": self.pages,
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """A window checked against its allow-list: what to ask the repository for."""

    slice: Slice
    spec: str
    sorts: dict[str, Sortable]
    window: Window


def plan(window: Window, sorts: dict[str, Sortable]) -> Plan:
    """Check a window (bounds, sort allow-list, cursor) and turn it into a repository slice."""
    if not 1 <= window.per_page <= MAX_PER_PAGE:
        raise InvalidParameter("per_page", f"must be 1 to {MAX_PER_PAGE}")
    if window.page is not None and not 1 <= window.page <= MAX_PAGE:
        raise InvalidParameter("page", f"must be 1 to {MAX_PAGE}; use cursor paging beyond")
    spec, keys = parse_sort(window.sort, sorts)
    limit = window.per_page + 1  # one more tells whether another page follows
    if window.cursor is not None:
        after = decode_cursor(window.cursor, spec, sorts)
        return Plan(Slice(limit, keys, after=after), spec, sorts, window)
    offset = ((window.page or 1) - 1) * window.per_page
    return Plan(Slice(limit, keys, offset=offset), spec, sorts, window)


def page_of(plan: Plan, found: Sequence[Any], total: int) -> Page:
    """The page of ``found`` (the repository's answer to ``plan.slice``)."""
    per_page = plan.window.per_page
    items = list(found[:per_page])
    cursor = None
    if len(found) > per_page:
        cursor = encode_cursor(plan.spec, _position(items[-1], plan.slice))
    page = None if plan.window.cursor is not None else (plan.window.page or 1)  # cursor wins
    return Page([item.snapshot() for item in items], page, per_page, total, cursor)


def parse_sort(spec: str | None, sorts: dict[str, Sortable]) -> tuple[str, tuple[SortKey, ...]]:
    """``"name,-created_at"`` -> its canonical form and sort keys (allow-list checked)."""
    fields = [part.strip() for part in (spec or DEFAULT_SORT).split(",")]
    if len(fields) > MAX_SORT_FIELDS:
        raise InvalidParameter("sort", f"at most {MAX_SORT_FIELDS} fields")
    keys: list[SortKey] = []
    names: list[str] = []
    for field in fields:
        name = field.removeprefix("-")
        if name not in sorts:
            allowed = ", ".join(sorted(sorts))
            raise InvalidParameter("sort", f"{name!r} is not sortable; use {allowed}")
        if name in names:
            continue  # the first mention decides
        names.append(name)
        keys.append(SortKey(sorts[name].attribute, field.startswith("-")))
    return ",".join(_first(fields)), tuple(keys)


def _first(fields: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for field in fields:
        if field.removeprefix("-") not in seen:
            seen.add(field.removeprefix("-"))
            kept.append(field)
    return kept


def sort_pattern(sorts: dict[str, Sortable]) -> str:
    """The JSON Schema pattern of a ``sort`` parameter over ``sorts``."""
    one = "-?(" + "|".join(sorted(sorts)) + ")"
    return f"^{one}(,{one}){{0,{MAX_SORT_FIELDS - 1}}}$"


def encode_cursor(spec: str, values: Sequence[Any]) -> str:
    raw = json.dumps({"s": spec, "v": [_plain(v) for v in values]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, spec: str, sorts: dict[str, Sortable]) -> tuple[Any, ...]:
    """The keyset position a cursor names, typed; a 400 if it is not one of ours."""
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError("too long")
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != spec:
            raise InvalidParameter("cursor", "was made for another sort; keep the same sort")
        kinds = [sorts[name.removeprefix("-")].kind for name in spec.split(",")] + [UUID]
        values = raw["v"]
        if len(values) != len(kinds):
            raise ValueError("wrong length")
        return tuple(_typed(value, kind) for value, kind in zip(values, kinds, strict=True))
    except InvalidParameter:
        raise
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise InvalidParameter("cursor", "is not a cursor of this list") from exc


def _position(item: Any, window: Slice) -> list[Any]:
    return [getattr(item, key.attribute) for key in window.keys]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _typed(value: Any, kind: type[Any]) -> Any:
    if kind is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return moment
    if kind is UUID:
        return UUID(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**31:
            raise ValueError("not an int")
        return value
    if not isinstance(value, str) or len(value) > 2000:
        raise ValueError("not a string")
    return value
