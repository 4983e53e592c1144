"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy.

Only the addresses appended by trusted proxies are believed: the list is read
right to left and the first address that is not a trusted proxy is the client
(left-most entries are whatever the client chose to send).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from gatehouse.common.types import Scope


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = tuple(ipaddress.ip_network(c, strict=False) for c in trusted_proxies)

    def peer(self, scope: Scope) -> str:
        client = scope.get("client")
        return str(client[0]) if client else "unknown"

    def is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def client_ip(self, scope: Scope, forwarded_for: Sequence[bytes] = ()) -> str:
        """The client's IP: the peer, or the right-most untrusted X-Forwarded-For entry."""
        peer = self.peer(scope)
        if not forwarded_for or not self.is_trusted(peer):
            return peer
        chain = [a.decode("latin-1") for a in forwarded_for]
        for address in reversed(chain):
            if not self.is_trusted(address):
                return address
        return chain[0]

    def forwarded_for(self, scope: Scope, forwarded_for: Sequence[bytes] = ()) -> bytes:
        """The X-Forwarded-For to send upstream: the trusted chain plus the peer."""
        peer = self.peer(scope).encode()
        if forwarded_for and self.is_trusted(self.peer(scope)):
            return b", ".join([*forwarded_for, peer])
        return peer
