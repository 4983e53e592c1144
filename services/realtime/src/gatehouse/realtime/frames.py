"""A text message framed once for every socket it goes to (issue #8).

A server's frames are unmasked (RFC 6455 §5.1) and realtime negotiates no extension
(no permessage-deflate: :mod:`gatehouse.realtime.server`), so a text message's frame is
the same bytes on every socket. A broadcast builds them once, on the first socket that
can take them at once, instead of encoding and framing the text again per subscriber.
"""

from __future__ import annotations

import struct

_FIN_TEXT = 0x81  # FIN, opcode 0x1 (text); RSV bits 0: no extension
_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame around UTF-8 ``payload`` (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 65536:
        header = _LENGTH_16.pack(_FIN_TEXT, 126, size)
    else:
        header = _LENGTH_64.pack(_FIN_TEXT, 127, size)
    return header + payload


class TextMessage:
    """A text message and, built when first asked for, its frame (shared: a broadcast's
    one object goes to every subscriber, queued or written)."""

    __slots__ = ("_frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        frame = self._frame
        if frame is None:
            frame = self._frame = text_frame(self.text.encode())
        return frame
