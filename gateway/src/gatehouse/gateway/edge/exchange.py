"""One request at the edge: its headers parsed once, and what the policy decided about it."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field

from gatehouse.common.errors import GatehouseError
from gatehouse.common.identity import Principal
from gatehouse.common.types import Scope
from gatehouse.gateway.config import Route

Headers = list[tuple[bytes, bytes]]

_random_bits = random.getrandbits
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway itself; a client's own values are never passed on.
_REPLACED = frozenset(
    {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id"}
)
# Headers that claim an identity or a client address: only the gateway may say these.
_IDENTITY = frozenset(
    {
        b"x-roles",
        b"x-role",
        b"x-groups",
        b"x-email",
        b"forwarded",
        b"x-real-ip",
        b"x-client-ip",
        b"true-client-ip",
        b"remote-user",
        b"x-remote-user",
        b"x-authenticated-user",
        b"x-authenticated-userid",
        b"x-consumer-id",
        b"x-consumer-username",
    }
)
_IDENTITY_PREFIXES = (
    b"x-user",
    b"x-auth-request-",
    b"x-forwarded-user",
    b"x-forwarded-email",
    b"x-forwarded-groups",
    b"x-forwarded-preferred-username",
    b"x-gatehouse-",
)


_DROPPED = HOP_BY_HOP | _REPLACED | _IDENTITY


def is_identity_header(name: bytes) -> bool:
    return name in _IDENTITY or name.startswith(_IDENTITY_PREFIXES)


def _clean(passed: Headers, connection: bytes | None) -> Headers:
    """Less the headers ``Connection`` names (RFC 9110 §7.6.1) and a malformed traceparent."""
    named = {t.strip().lower() for t in (connection or b"").split(b",")}
    return [
        (n, v)
        for n, v in passed
        if n not in named and (n != b"traceparent" or _TRACEPARENT.match(v))
    ]


@dataclass(slots=True)
class Exchange:
    """A request as the edge sees it. Built once from the ASGI scope; every stage reads it."""

    scope: Scope
    method: str
    path: str
    # The headers the edge reads (last value wins for single-valued ones).
    authorization: bytes | None = None
    content_length: bytes | None = None
    content_type: bytes | None = None
    content_encoding: bytes | None = None
    chunked: bool = False
    host: bytes | None = None
    origin: bytes | None = None
    preflight_method: bytes | None = None
    forwarded_for: list[bytes] = field(default_factory=list)
    forwarded_proto: bytes | None = None
    forwarded_host: bytes | None = None
    request_id: str = ""
    # Client headers that may travel upstream (hop-by-hop, replaced and identity ones removed).
    passed: Headers = field(default_factory=list)
    started: float = 0.0
    # Decided by the policy stage.
    route: Route | None = None
    principal: Principal | None = None
    auth_error: GatehouseError | None = None
    preflight: bool = False
    client_ip: str = ""
    peer_trusted: bool = False
    forwarded_chain: bytes = b""  # the X-Forwarded-For to send upstream
    rate_headers: Headers = field(default_factory=list)
    cors_headers: Headers = field(default_factory=list)
    status: int = 0
    template: str = "<unmatched>"  # the metric label when no route matched
    csp: bytes | None = None  # replaces the default Content-Security-Policy when set

    @classmethod
    def parse(cls, scope: Scope) -> Exchange:
        headers = scope["headers"]
        last = dict(headers)  # one C-level pass; the last value wins for single fields
        ex = cls(scope, scope.get("method", "GET"), scope["path"], started=time.perf_counter())
        ex.authorization = last.get(b"authorization")
        ex.content_length = last.get(b"content-length")
        ex.content_type = last.get(b"content-type")
        ex.content_encoding = last.get(b"content-encoding")
        ex.chunked = b"transfer-encoding" in last
        ex.host = last.get(b"host")
        ex.origin = last.get(b"origin")
        ex.preflight_method = last.get(b"access-control-request-method")
        ex.forwarded_proto = last.get(b"x-forwarded-proto")
        ex.forwarded_host = last.get(b"x-forwarded-host")
        if b"x-forwarded-for" in last:
            ex.forwarded_for = [
                a.strip() for n, v in headers if n == b"x-forwarded-for" for a in v.split(b",")
            ]
            ex.forwarded_for = [a for a in ex.forwarded_for if a]
        request_id = last.get(b"x-request-id")
        ex.request_id = (
            request_id.decode()
            if request_id is not None and _REQUEST_ID.match(request_id)
            else f"{_random_bits(128):032x}"  # unique, not secret: no syscall per request
        )
        ex.passed = [
            (n, v) for n, v in headers if n not in _DROPPED and not n.startswith(_IDENTITY_PREFIXES)
        ]
        if b"connection" in last or b"traceparent" in last:
            ex.passed = _clean(ex.passed, last.get(b"connection"))
        return ex

    @property
    def has_body(self) -> bool:
        return self.chunked or (self.content_length is not None and self.content_length != b"0")

    @property
    def media_type(self) -> str:
        if self.content_type is None:
            return ""
        return self.content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
