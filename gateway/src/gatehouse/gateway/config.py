"""The declarative gateway configuration: upstreams, routes, rate-limit policies, limits.

``gateway.yaml`` next to this module is the default; ``GATEHOUSE_GATEWAY_CONFIG``
points at another file. Every error names the offending key, e.g.
``routes[3].upstream: unknown upstream 'autors'``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.settings import check_url

_METHOD = re.compile(r"^[A-Z]+$")
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Model):
    connect: float = Field(2.0, gt=0)
    read: float = Field(30.0, gt=0)
    write: float = Field(30.0, gt=0)
    pool: float = Field(5.0, gt=0)


class BreakerPolicy(_Model):
    """Trips on the upstream's health only: connect errors, timeouts, 502/503/504."""

    fail_max: int = Field(5, ge=1)
    # The first open period; each failed half-open trial doubles it up to max_reset_timeout.
    reset_timeout: float = Field(2.0, gt=0)
    max_reset_timeout: float = Field(30.0, gt=0)
    # A half-open trial that has not answered within this many seconds frees the slot.
    trial_timeout: float = Field(5.0, gt=0)


class RetryPolicy(_Model):
    """Retries: idempotent requests on a reused connection that failed before any byte,
    and any request whose connection to one replica was refused (sent to another)."""

    budget_ratio: float = Field(0.2, ge=0, description="retries per request, at most")
    min_per_second: float = Field(5.0, ge=0, description="retries always allowed")


class ReplicaHealth(_Model):
    """Passive health: a replica that refuses connections is left out for a while."""

    eject_for: float = Field(2.0, gt=0, description="seconds, doubled per new failure")
    max_eject_for: float = Field(30.0, gt=0)


class Upstream(_Model):
    urls: tuple[str, ...] = Field(min_length=1)
    timeouts: Timeouts = Timeouts()
    pool_size: int = Field(100, ge=1)
    breaker: BreakerPolicy = BreakerPolicy()
    retry: RetryPolicy = RetryPolicy()
    health: ReplicaHealth = ReplicaHealth()

    @model_validator(mode="before")
    @classmethod
    def _one_url(cls, data: Any) -> Any:
        """``url: X`` is short for ``urls: [X]``."""
        if isinstance(data, dict) and "url" in data:
            data = dict(data)
            url = data.pop("url")
            if "urls" in data:
                raise ValueError("give url or urls, not both")
            data["urls"] = [url]
        return data

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_upstream_url(url) for url in value)

    @property
    def url(self) -> str:
        return self.urls[0]


class RateLimitPolicy(_Model):
    limit: int = Field(ge=1)
    window: float = Field(gt=0, description="seconds")


class Limits(_Model):
    max_body_bytes: int = Field(1_048_576, ge=0)
    max_ws_frame_bytes: int = Field(65_536, ge=1)
    max_header_count: int = Field(100, ge=1)
    max_header_bytes: int = Field(16_384, ge=256, description="the whole request head")
    max_url_bytes: int = Field(8_192, ge=64)
    header_timeout: float = Field(10.0, gt=0, description="seconds to receive a request head")
    body_timeout: float = Field(30.0, gt=0, description="seconds to receive a request body")
    # What a WebSocket without an Authorization header may do before its auth message.
    ws_auth_timeout: float = Field(5.0, gt=0)
    ws_auth_max_bytes: int = Field(16_384, ge=256)


class Cors(_Model):
    """Cross-origin access for a route group; preflight requests are answered by the gateway."""

    allow_origins: tuple[str, ...] = Field(min_length=1)
    allow_headers: tuple[str, ...] = (
        "authorization",
        "content-type",
        "if-match",
        "idempotency-key",
    )
    expose_headers: tuple[str, ...] = (
        "etag",
        "location",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "x-request-id",
    )
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0)

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and (
                not origin.startswith(("http://", "https://")) or origin.endswith("/")
            ):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        return value


class Route(_Model):
    """A path prefix sent to one upstream, with its access rules."""

    prefix: str
    upstream: str
    methods: tuple[str, ...] | None = None
    strip_prefix: str | None = None
    public: bool = False
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    rate_limit: str | None = "default"
    websocket: bool = False
    # Media types a request body must have (415 otherwise); None accepts any.
    content_types: tuple[str, ...] | None = None
    cors: str | None = None  # a key of the top-level ``cors`` section

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.startswith("/") or (value != "/" and value.endswith("/")):
            raise ValueError("must start with '/' and not end with '/'")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(_method(m) for m in value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {_method(m): roles for m, roles in value.items()}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.public and self.roles:
            raise ValueError("a public route cannot require roles")
        if self.strip_prefix and not _is_path_prefix(self.strip_prefix, self.prefix):
            raise ValueError(
                f"strip_prefix {self.strip_prefix!r} is not a prefix of {self.prefix!r}"
            )
        if self.methods is not None and (extra := set(self.roles) - set(self.methods)):
            raise ValueError(f"roles given for methods not allowed: {sorted(extra)}")
        return self

    @property
    def path(self) -> str:
        """The route template used as a metric label (bounded, never the raw path)."""
        return self.prefix

    @functools.cached_property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.allowed_methods())

    def allowed_methods(self) -> tuple[str, ...]:
        """The methods this route answers, HEAD wherever GET is, in a stable order."""
        named = set(self.methods if self.methods is not None else self.roles or ALL_METHODS)
        if "GET" in named:
            named.add("HEAD")
        return tuple(m for m in ALL_METHODS if m in named) + tuple(sorted(named - set(ALL_METHODS)))

    def allows(self, method: str) -> bool:
        return method in self.allowed  # computed once: this runs on every request

    def roles_for(self, method: str) -> tuple[str, ...]:
        """Roles of which the caller needs one; empty means any authenticated caller."""
        if method == "HEAD" and "HEAD" not in self.roles:
            method = "GET"
        return self.roles.get(method, ())

    def matches(self, path: str) -> bool:
        return _is_path_prefix(self.prefix, path)


class WebSocketLimits(_Model):
    max_per_user: int = Field(8, ge=1, description="concurrent sockets of one user")
    handshakes_in_flight: int = Field(
        32, ge=1, description="upstream handshakes under way at once, per upstream and process"
    )
    handshake_wait: float = Field(
        15.0, gt=0, description="seconds a socket may wait for its turn, then 1013"
    )


class LoginLimits(_Model):
    """Extra limits on the public login routes, keyed by the username tried and the IP."""

    routes: tuple[str, ...] = ("/auth/token",)
    per_username: RateLimitPolicy = RateLimitPolicy(limit=10, window=60)
    per_ip: RateLimitPolicy = RateLimitPolicy(limit=30, window=60)


class GatewayConfig(_Model):
    upstreams: dict[str, Upstream]
    routes: tuple[Route, ...]
    rate_limits: dict[str, RateLimitPolicy] = Field(default_factory=dict)
    limits: Limits = Limits()
    trusted_proxies: tuple[str, ...] = ()
    cors: dict[str, Cors] = Field(default_factory=dict)
    websockets: WebSocketLimits = WebSocketLimits()
    login: LoginLimits = LoginLimits()
    revocation_poll: float = Field(2.0, gt=0, description="seconds between revocation polls")
    # The public base URL clients use (no trailing slash); links and the issuer's
    # discovery document are rewritten to it. None: the request's own Host.
    public_url: str | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"not an IP network: {cidr!r}") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems = [*self._route_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _route_problems(self) -> list[str]:
        problems = []
        for i, route in enumerate(self.routes):
            if route.upstream not in self.upstreams:
                problems.append(f"routes[{i}].upstream: unknown upstream {route.upstream!r}")
            if route.rate_limit is not None and route.rate_limit not in self.rate_limits:
                problems.append(f"routes[{i}].rate_limit: unknown policy {route.rate_limit!r}")
            if route.cors is not None and route.cors not in self.cors:
                problems.append(f"routes[{i}].cors: unknown cors group {route.cors!r}")
        return problems

    def with_upstream_urls(self, urls: Mapping[str, str | tuple[str, ...]]) -> GatewayConfig:
        """A copy whose upstreams listed in ``urls`` point at the given URLs.

        Names match case-insensitively with ``-`` and ``_`` alike (environment
        variables cannot spell ``-``); a name that matches no upstream is an error.
        """
        upstreams = dict(self.upstreams)
        by_key = {_env_key(name): name for name in upstreams}
        for key, replicas in urls.items():
            name = by_key.get(_env_key(key))
            if name is None:
                raise ConfigurationError(
                    f"GATEHOUSE_UPSTREAM_{_env_key(key)}_URL",
                    "no upstream of that name in the config",
                )
            listed = (replicas,) if isinstance(replicas, str) else tuple(replicas)
            upstreams[name] = upstreams[name].model_copy(update={"urls": listed})
        return self.model_copy(update={"upstreams": upstreams})


def _env_key(name: str) -> str:
    return name.upper().replace("-", "_")


def _upstream_url(value: str) -> str:
    check_url(value, "url", ("http", "https"))
    return value.rstrip("/")


def _method(value: str) -> str:
    method = value.upper()
    if not _METHOD.match(method):
        raise ValueError(f"not an HTTP method: {value!r}")
    return method


def _is_path_prefix(prefix: str, path: str) -> bool:
    if prefix == "/":
        return path.startswith("/")
    return path == prefix or path.startswith(prefix + "/")


def load_config(
    path: Path | None = None, upstream_urls: Mapping[str, str | tuple[str, ...]] | None = None
) -> GatewayConfig:
    """Read and validate a config file (default: the packaged ``gateway.yaml``)."""
    source = str(path) if path else "gateway.yaml (packaged)"
    text = _read(path, source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(source, f"not valid YAML: {exc}") from None
    return parse_config(data, source).with_upstream_urls(upstream_urls or {})


def parse_config(data: Any, source: str = "gateway config") -> GatewayConfig:
    if isinstance(data, dict):  # ``x-*`` keys hold YAML anchors, as in docker-compose
        data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(source, _describe(exc.errors())) from None


def _read(path: Path | None, source: str) -> str:
    try:
        if path is None:
            return resources.files(__package__).joinpath("gateway.yaml").read_text("utf-8")
        return path.read_text("utf-8")
    except OSError as exc:
        raise ConfigurationError(source, f"cannot read: {exc.strerror}") from None


def _describe(errors: Sequence[Any]) -> str:
    return "; ".join(_message(e["loc"], e["msg"]) for e in errors)


def _message(loc: Sequence[str | int], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return f"{_loc(loc)}: {msg}" if loc else msg


def _loc(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")
