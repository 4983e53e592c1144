"""FastAPI dependencies, each defined once as an ``Annotated`` alias."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse.authors.relay import OutboxRelay
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork, SqlAlchemyUnitOfWork
from gatehouse.common.errors import Forbidden, Unauthorized
from gatehouse.common.identity import CREATE_AUTHOR, GET_AUTHORS, Principal
from gatehouse.common.tokens import JWTVerifier


@dataclass
class Resources:
    """What the lifespan builds and the routes use; lives on ``app.state.resources``."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    verifier: JWTVerifier
    relay: OutboxRelay | None = None
    relay_task: asyncio.Task[None] | None = None

    def relay_running(self) -> bool:
        return self.relay_task is not None and not self.relay_task.done()

    def unit_of_work(self) -> SqlAlchemyUnitOfWork:
        wake = self.relay.wake if self.relay is not None else None
        return SqlAlchemyUnitOfWork(self.sessions, on_commit=wake)


def get_resources(request: Request) -> Resources:
    resources = request.app.state.resources
    assert isinstance(resources, Resources)
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_uow(resources: ResourcesDep) -> AbstractUnitOfWork:
    return resources.unit_of_work()


UnitOfWorkDep = Annotated[AbstractUnitOfWork, Depends(get_uow)]

_bearer = HTTPBearer(auto_error=False, description="An access token of the Gatehouse issuer.")


async def current_principal(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required")
    return await resources.verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through principals holding one of ``roles`` (or ``admin``)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any(roles):
            raise Forbidden(f"requires one of the roles: {', '.join(roles)}")
        return principal

    return check


AuthorReader = Annotated[Principal, Depends(require_role(GET_AUTHORS))]
AuthorCreator = Annotated[Principal, Depends(require_role(CREATE_AUTHOR))]
