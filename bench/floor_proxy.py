"""The Python floor: a bare pure-ASGI reverse proxy on aiohttp's client, nothing else.

It forwards the request's headers and the response's (less hop-by-hop ones), as any
proxy must, and does nothing more: no limits, no auth, no metrics.

python bench/floor_proxy.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn

UPSTREAM = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8001"
SKIP = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"date"}
session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global session
    if scope["type"] != "http":
        return
    session = session or aiohttp.ClientSession(auto_decompress=False)
    headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k not in SKIP]
    url = UPSTREAM + scope["path"]
    async with session.request(scope["method"], url, headers=headers) as response:
        body = await response.read()
        back = [(k, v) for k, v in response.raw_headers if k.lower() not in SKIP]
        await send({"type": "http.response.start", "status": response.status, "headers": back})
        await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
