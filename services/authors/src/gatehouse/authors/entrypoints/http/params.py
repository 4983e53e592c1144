"""Query parameters of the lists, each bounded so no value a client sends can overflow."""

from __future__ import annotations

import re
from typing import Annotated
from uuid import UUID

from fastapi import Query
from pydantic import AwareDatetime, BeforeValidator

from gatehouse.authors.service_layer.pagination import (
    CURSOR_PATTERN,
    MAX_PAGE,
    MAX_PER_PAGE,
)

MAX_IDS = 50  # 50 ids and every other filter at its longest stay under 8 KiB of URL

Page = Annotated[
    int | None,
    Query(ge=1, le=MAX_PAGE, description=f"1-based page (offset paging), at most {MAX_PAGE}."),
]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Rows per page.")]
Cursor = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        description="`meta.next_cursor` of the previous page (keyset paging: stable while "
        "rows are added). Not with `page`; keep the same `sort`.",
    ),
]
Ids = Annotated[
    list[UUID] | None, Query(alias="id", max_length=MAX_IDS, description="Only these ids.")
]
Text = Annotated[str | None, Query(max_length=200)]
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    """Only RFC 3339 text (pydantic alone would also read ``0.5`` as a Unix time)."""
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
Since = Annotated[Moment | None, Query(description="RFC 3339 with offset; inclusive.")]
Until = Annotated[Moment | None, Query(description="RFC 3339 with offset; exclusive.")]
