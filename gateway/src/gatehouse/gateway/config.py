"""The declarative gateway configuration: upstreams, routes, rate-limit policies, limits.

``gateway.yaml`` next to this module is the default; ``GATEHOUSE_GATEWAY_CONFIG``
points at another file. Every error names the offending key, e.g.
``routes[3].upstream: unknown upstream 'autors'``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.settings import check_url

_METHOD = re.compile(r"^[A-Z]+$")
_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(_Model):
    connect: float = Field(2.0, gt=0)
    read: float = Field(30.0, gt=0)
    write: float = Field(30.0, gt=0)
    pool: float = Field(5.0, gt=0)


class BreakerPolicy(_Model):
    fail_max: int = Field(5, ge=1)
    reset_timeout: float = Field(30.0, gt=0)


class Upstream(_Model):
    url: str
    timeouts: Timeouts = Timeouts()
    pool_size: int = Field(100, ge=1)
    breaker: BreakerPolicy = BreakerPolicy()
    # The pool under the httpx API: aiohttp's (fast, the default) or httpcore's (plain
    # httpx, several times the CPU per request: bench/RESULTS.md).
    transport: Literal["aiohttp", "httpx"] = "aiohttp"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_url(value, "url", ("http", "https"))
        return value.rstrip("/")


class RateLimitPolicy(_Model):
    limit: int = Field(ge=1)
    window: float = Field(gt=0, description="seconds")


class Limits(_Model):
    max_body_bytes: int = Field(1_048_576, ge=0)
    max_ws_frame_bytes: int = Field(65_536, ge=1)


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

    def allowed_methods(self) -> tuple[str, ...]:
        if self.methods is not None:
            return self.methods
        return tuple(self.roles) if self.roles else _ALL_METHODS

    def allows(self, method: str) -> bool:
        allowed = self.allowed_methods()
        return method in allowed or (method == "HEAD" and "GET" in allowed)

    def roles_for(self, method: str) -> tuple[str, ...]:
        """Roles of which the caller needs one; empty means any authenticated caller."""
        if method == "HEAD" and "HEAD" not in self.roles:
            method = "GET"
        return self.roles.get(method, ())

    def matches(self, path: str) -> bool:
        return _is_path_prefix(self.prefix, path)


class GatewayConfig(_Model):
    upstreams: dict[str, Upstream]
    routes: tuple[Route, ...]
    rate_limits: dict[str, RateLimitPolicy] = Field(default_factory=dict)
    limits: Limits = Limits()
    trusted_proxies: tuple[str, ...] = ()

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
        return problems

    def with_upstream_urls(self, urls: dict[str, str]) -> GatewayConfig:
        """A copy whose upstreams listed in ``urls`` point at the given URLs."""
        upstreams = dict(self.upstreams)
        for name, url in urls.items():
            if name in upstreams:
                upstreams[name] = upstreams[name].model_copy(update={"url": url})
        return self.model_copy(update={"upstreams": upstreams})


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
    path: Path | None = None, upstream_urls: dict[str, str] | None = None
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
