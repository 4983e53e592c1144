"""JSON logs with ``request_id`` and ``trace_id``; bearer tokens never reach a log line."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime

from opentelemetry import trace

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)

_SECRETS = re.compile(
    r"(?i)(bearer\s+|\"?(?:access_token|refresh_token|id_token|token|password|client_secret|secret)\"?\s*[:=]\s*\"?)"
    r"[A-Za-z0-9\-_.~+/=]{6,}"
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def _trace_id() -> str | None:
    """The trace of the current span (tracing on, or a trusted caller's traceparent)."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else trace_id_var.get()


def redact(text: str) -> str:
    """Remove bearer tokens, JWTs and passwords from a log message."""
    return _JWT.sub("[redacted-jwt]", _SECRETS.sub(r"\1[redacted]", text))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if rid := request_id_var.get():
            entry["request_id"] = rid
        if tid := _trace_id():
            entry["trace_id"] = tid
        fields = getattr(record, "fields", None)  # structured extras: extra={"fields": {...}}
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Configure the root logger once per process (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else PlainFormatter("%(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn.access and httpx log one line per request: too much on a hot path, and
    # full URLs do not belong in logs by default.
    for name in ("uvicorn.access", "httpx", "httpcore", "alembic.runtime.plugins"):
        logging.getLogger(name).setLevel(logging.WARNING)
