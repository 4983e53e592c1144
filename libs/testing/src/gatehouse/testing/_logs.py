"""Log records as the JSON lines production writes (fixture ``log_lines``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gatehouse.common.logging import JsonFormatter


class LogLines(logging.Handler):
    """Log records as the JSON lines production writes, formatted when emitted (a request
    id is a context variable: it must be current when the line is written)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"] == logger]

    def at_least(self, level: str) -> list[dict[str, Any]]:
        order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        return [line for line in self.lines if order.index(line["level"]) >= order.index(level)]


@contextmanager
def recorded_lines() -> Iterator[LogLines]:
    """Every record at INFO and above while the block runs, uvicorn's included."""
    handler = LogLines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):  # serve() leaves their propagation alone
        logging.getLogger(name).propagate = True
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
