"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy.

Only the addresses appended by trusted proxies are believed: the list is read
right to left and the first address that is not a trusted proxy is the client
(left-most entries are whatever the client chose to send).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from gatehouse.common.types import Scope
from gatehouse.gateway.asgi import CLIENT_IP


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

    def client_ip(self, scope: Scope) -> str:
        """The client's IP for this request (computed once, kept in the scope)."""
        cached = scope.get(CLIENT_IP)
        if isinstance(cached, str):
            return cached
        address = self._resolve(scope)
        scope[CLIENT_IP] = address
        return address

    def _resolve(self, scope: Scope) -> str:
        peer = self.peer(scope)
        if not self.is_trusted(peer):
            return peer
        chain = _forwarded_for(scope)
        for address in reversed(chain):
            if not self.is_trusted(address):
                return address
        return chain[0] if chain else peer

    def forwarded_for(self, scope: Scope) -> str:
        """The X-Forwarded-For to send upstream: the trusted chain plus the peer."""
        peer = self.peer(scope)
        chain = _forwarded_for(scope) if self.is_trusted(peer) else []
        return ", ".join([*chain, peer])


def _forwarded_for(scope: Scope) -> list[str]:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
    return [a.strip() for value in values for a in value.split(",") if a.strip()]
