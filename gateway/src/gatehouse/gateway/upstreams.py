"""One pooled HTTP client and one circuit breaker per upstream, built in the lifespan.

The client is an ``httpx.AsyncClient``; its transport (the pool) is aiohttp's unless
the upstream's config says ``transport: httpx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from gatehouse.gateway.aiohttp_transport import AiohttpTransport
from gatehouse.gateway.breaker import AsyncBreaker
from gatehouse.gateway.config import Upstream


@dataclass(frozen=True)
class UpstreamClient:
    name: str
    config: Upstream
    base_url: httpx.URL
    client: httpx.AsyncClient
    breaker: AsyncBreaker


def open_upstream(name: str, config: Upstream) -> UpstreamClient:
    timeouts = config.timeouts
    transport = (
        AiohttpTransport(max_connections=config.pool_size)
        if config.transport == "aiohttp"
        else None  # httpx's own (httpcore) pool, sized by ``limits``
    )
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.pool
        ),
        limits=httpx.Limits(
            max_connections=config.pool_size, max_keepalive_connections=config.pool_size
        ),
        follow_redirects=False,
        trust_env=False,  # proxies for upstream calls come from config, not the environment
        transport=transport,
    )
    breaker = AsyncBreaker(
        name, fail_max=config.breaker.fail_max, reset_timeout=config.breaker.reset_timeout
    )
    return UpstreamClient(name, config, httpx.URL(config.url), client, breaker)


def open_upstreams(upstreams: dict[str, Upstream]) -> dict[str, UpstreamClient]:
    return {name: open_upstream(name, config) for name, config in upstreams.items()}


async def close_upstreams(clients: dict[str, UpstreamClient]) -> None:
    for upstream in clients.values():
        await upstream.client.aclose()
