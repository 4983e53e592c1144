"""What a service knows about the request it is serving: its id, its caller, its peer.

:class:`RequestIdMiddleware` gives every request an ``X-Request-ID``;
:class:`gatehouse.common.middleware.ServiceMiddleware` does that and more. The id of
the request being served is in :data:`gatehouse.common.logging.request_id_var`, so
every log line carries it; :func:`note_user` records who the caller turned out to
be, for the access log line written when the request ends.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from gatehouse.common.logging import request_id_var
from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send

_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")


@dataclass(slots=True)
class RequestInfo:
    """The request being served: its id and, once authenticated, its user."""

    request_id: str
    user: str | None = None


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "gatehouse_request", default=None
)


def current_request() -> RequestInfo | None:
    """The request being served (id, user), or None outside a request."""
    return _current.get()


def note_user(username: str) -> None:
    """Record the authenticated caller of the current request (for the access log)."""
    info = _current.get()
    if info is not None:
        info.user = username


class serving:
    """Make a request with ``request_id`` the current one within the ``with`` block."""

    __slots__ = ("_tokens", "info")

    def __init__(self, request_id: str) -> None:
        self.info = RequestInfo(request_id)

    def __enter__(self) -> RequestInfo:
        self._tokens = (_current.set(self.info), request_id_var.set(self.info.request_id))
        return self.info

    def __exit__(self, *exc_info: object) -> None:
        current, rid = self._tokens
        request_id_var.reset(rid)
        _current.reset(current)


class TrustedPeers:
    """The peers whose forwarded headers (``X-Request-ID``, ``traceparent``,
    ``X-Forwarded-For``) count.

    ``GATEHOUSE_TRUSTED_PROXIES``: the gateway and other services on the mesh, not
    the public. Verdicts on addresses are remembered (a small, bounded cache).
    """

    def __init__(self, networks: Iterable[str | IPNetwork] = DEFAULT_TRUSTED_PROXIES) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self._verdicts: dict[str, bool] = {}

    def trusts(self, scope: Scope) -> bool:
        """Whether the peer of this connection is a trusted proxy."""
        return self.trusts_address(peer_address(scope))

    def trusts_address(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._check(host)
            if len(self._verdicts) > 4096:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict

    def client_ip(self, scope: Scope) -> str:
        """The client's address: the peer, or, when the peer is trusted, the right-most
        ``X-Forwarded-For`` entry that is not a trusted proxy (entries further left are
        whatever the client chose to send)."""
        peer = peer_address(scope)
        if not self.trusts_address(peer):
            return peer
        chain = forwarded_for(scope)
        for address in reversed(chain):
            if not self.trusts_address(address):
                return address
        return chain[0] if chain else peer

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def peer_address(scope: Scope) -> str:
    """The address of the connection's peer (``unknown`` when the server gives none)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def forwarded_for(scope: Scope) -> list[str]:
    """Every ``X-Forwarded-For`` entry, left to right, over all such headers."""
    return [
        entry.strip()
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
        for entry in value.decode("latin-1").split(",")
        if entry.strip()
    ]


def incoming_request_id(scope: Scope, trusted: TrustedPeers | bool | None = None) -> str:
    """The caller's request id when well-formed (and from a trusted peer), else a fresh one.

    ``trusted``: the peers to believe, or whether this scope's peer is one (None: any).
    """
    believe = trusted if isinstance(trusted, bool) else trusted is None or trusted.trusts(scope)
    if believe:
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id" and _VALID.match(value):
                return str(value.decode())
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope)
        token = request_id_var.set(rid)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            request_id_var.reset(token)
