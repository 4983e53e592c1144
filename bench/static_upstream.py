"""The static upstream of the bench: 1 KB of JSON for every GET (uvicorn + httptools + uvloop).

python bench/static_upstream.py PORT
"""

from __future__ import annotations

import json
import sys
from typing import Any

import uvicorn

BODY = json.dumps({"id": "bench", "name": "Bench Author", "bio": "x" * 960}).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


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
