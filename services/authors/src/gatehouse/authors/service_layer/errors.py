"""Errors of the service layer (a caller's request that cannot be run as asked)."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gatehouse.common.errors import BadRequest, ServiceUnavailable, ValidationFailed

log = logging.getLogger("gatehouse.authors")


class InvalidParameter(BadRequest):
    """A query parameter (or RPC parameter) that is unknown, malformed or out of range."""

    code = "invalid_parameter"

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}", parameter=parameter)


class IdempotencyKeyReused(ValidationFailed):
    """The same ``Idempotency-Key`` came with another request (RFC draft: 422)."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was used with another request; use a new key for a new request"
        )


RETRY_AFTER_SECONDS = 2
DATABASE_UNAVAILABLE = Counter(
    "gatehouse_authors_database_unavailable_total",
    "Requests answered 503 because the database could not be reached or timed out.",
)
_last_logged = [0.0]


# SQLSTATE classes of "no usable connection": 08 connection exception (08003: the
# connection closed during start-up), 57P operator intervention (shutdown, starting up).
_OUTAGE_SQLSTATES = ("08", "57P")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database is not there right now" (not a bad query)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    # A connection lost while it was being opened has none to invalidate: SQLAlchemy
    # wraps the driver's error in a plain DBAPIError, and only its SQLSTATE tells.
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    return exc.connection_invalidated or sqlstate.startswith(_OUTAGE_SQLSTATES)


def database_unavailable(exc: BaseException) -> ServiceUnavailable:
    """A 503 with ``Retry-After`` (logged once per interval, counted every time)."""
    DATABASE_UNAVAILABLE.inc()
    now = time.monotonic()
    if now - _last_logged[0] > 10:
        _last_logged[0] = now
        log.warning("database unavailable, answering 503: %r", exc)
    return ServiceUnavailable(
        "the database is unavailable; retry shortly", retry_after=RETRY_AFTER_SECONDS
    )
