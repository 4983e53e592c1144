"""Query parameters of the lists, each bounded so no value a client sends can overflow."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Query
from pydantic import AwareDatetime

from gatehouse.authors.service_layer.pagination import (
    CURSOR_PATTERN,
    MAX_PAGE,
    MAX_PER_PAGE,
)

MAX_IDS = 100
SORT_PATTERN = r"^-?[a-z_]{1,20}(,-?[a-z_]{1,20}){0,2}$"

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
Since = Annotated[AwareDatetime | None, Query(description="RFC 3339 with offset; inclusive.")]
Until = Annotated[AwareDatetime | None, Query(description="RFC 3339 with offset; exclusive.")]
