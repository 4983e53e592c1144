"""Offset and keyset (cursor) pages of ``(created_at, id)``-ordered results."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from gatehouse.common.errors import ValidationFailed

MAX_PER_PAGE = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int
    next_cursor: str | None

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.per_page else 0

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def encode_cursor(created_at: datetime, item_id: UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(item_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The position a cursor names; a tampered cursor is a 422, never a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, item_id = json.loads(raw)
        position = datetime.fromisoformat(stamp), UUID(item_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValidationFailed("cursor is not valid", field="cursor") from exc
    if position[0].tzinfo is None:
        raise ValidationFailed("cursor is not valid", field="cursor")
    return position
