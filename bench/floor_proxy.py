"""The Python floor: a bare pure-ASGI reverse proxy on aiohttp's client, nothing else.

python bench/floor_proxy.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn

UPSTREAM = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8001"
session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global session
    if scope["type"] != "http":
        return
    session = session or aiohttp.ClientSession(auto_decompress=False)
    async with session.request(scope["method"], UPSTREAM + scope["path"]) as response:
        body = await response.read()
        headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"date"]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
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
