"""Work the service does for itself, on a timer: no caller, no audit record."""

from __future__ import annotations

from datetime import UTC, datetime

from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork


async def purge_expired_keys(uow: AbstractUnitOfWork) -> int:
    """Forget the ``Idempotency-Key`` results whose 24 h are over; how many.

    A claim already ignores an expired key; this keeps the table from growing without
    bound. Every replica may run it: deleting what another deleted is nothing."""
    async with uow:
        removed = await uow.idempotency.purge(datetime.now(UTC))
        await uow.commit()
    return removed
