"""uvicorn options the launcher should pass when it serves the realtime app.

uvicorn's WebSocket defaults cost memory per connection (permessage-deflate keeps
one compressor per socket; 16 MiB frames; the sans-I/O protocol keeps the handshake
and a queue: :mod:`gatehouse.realtime.lean_protocol`). These keep an idle socket small, make
the server ping so dead peers are dropped, and set the transport's hard frame
limit above the protocol's soft one, so an oversize message gets an error reply
(``payload_too_large``) and only an absurd one closes the socket (1009).
"""

from __future__ import annotations

from typing import Any

from gatehouse.realtime.lean_protocol import LeanWebSocketProtocol
from gatehouse.realtime.settings import RealtimeSettings

HARD_LIMIT_FACTOR = 4


def uvicorn_ws_options(settings: RealtimeSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` (checked against uvicorn 0.54)."""
    return {
        "ws": LeanWebSocketProtocol,  # websockets-sansio, holding less per idle socket
        "ws_max_size": settings.max_message_bytes * HARD_LIMIT_FACTOR,
        "ws_max_queue": 16,
        "ws_ping_interval": settings.ping_interval,
        "ws_ping_timeout": settings.ping_timeout,
        "ws_per_message_deflate": False,
    }


UVICORN_WS_OPTIONS: dict[str, Any] = uvicorn_ws_options(RealtimeSettings.model_construct())
