"""An OTLP/HTTP endpoint for benches: answers 200 to every export and keeps nothing, so
that a traced process pays for making and exporting its spans, and no more.

    python bench/otlp_sink.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

HEADERS = [(b"content-type", b"application/x-protobuf"), (b"content-length", b"0")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
