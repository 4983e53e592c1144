"""Settings of the gateway process, read from the environment and checked at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator

from gatehouse.common.settings import PORTS, CommonSettings, check_url

_UPSTREAM_VARIABLE = re.compile(r"^GATEHOUSE_UPSTREAM_([A-Z0-9_]+)_URL$")
ADMIN_PORT = 9000


class GatewaySettings(CommonSettings):
    """Process settings; routes, upstreams and policies live in ``gateway.yaml``."""

    port: int = Field(PORTS["gateway"], validation_alias="GATEHOUSE_GATEWAY_PORT", ge=0, le=65535)
    admin_port: int = Field(ADMIN_PORT, validation_alias="GATEHOUSE_ADMIN_PORT", ge=0, le=65535)
    admin_host: str | None = Field(None, validation_alias="GATEHOUSE_ADMIN_HOST")
    config_path: Path | None = Field(None, validation_alias="GATEHOUSE_GATEWAY_CONFIG")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    # "memory": one replica on purpose (production accepts it without REDIS_URL).
    rate_limit_store: Literal["redis", "memory"] | None = Field(
        None, validation_alias="GATEHOUSE_RATE_LIMIT_STORE"
    )
    rate_limit_prefix: str = Field("gatehouse:rl:", validation_alias="GATEHOUSE_RATE_LIMIT_PREFIX")
    rate_limit_fail_open: bool = Field(True, validation_alias="GATEHOUSE_RATE_LIMIT_FAIL_OPEN")
    # Seconds between checks of the config file for changes (0: only SIGHUP reloads).
    config_watch: float = Field(2.0, ge=0, validation_alias="GATEHOUSE_GATEWAY_CONFIG_WATCH")
    # The three upstreams of the shipped config, by name (the launcher sets them); the
    # environment's GATEHOUSE_UPSTREAM_<NAME>_URL works for any name (upstream_overrides).
    upstream_authors_url: str | None = Field(
        None,
        validation_alias=AliasChoices("GATEHOUSE_UPSTREAM_AUTHORS_URL", "upstream_authors_url"),
    )
    upstream_realtime_url: str | None = Field(
        None,
        validation_alias=AliasChoices("GATEHOUSE_UPSTREAM_REALTIME_URL", "upstream_realtime_url"),
    )
    upstream_auth_url: str | None = Field(
        None, validation_alias=AliasChoices("GATEHOUSE_UPSTREAM_AUTH_URL", "upstream_auth_url")
    )

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        return check_url(value, "REDIS_URL", ("redis", "rediss", "unix"))

    @model_validator(mode="after")
    def _upstreams(self) -> Self:
        self.upstream_overrides()  # a wrong URL fails start-up, naming its variable
        return self

    @model_validator(mode="after")
    def _store(self) -> Self:
        if self.rate_limit_store == "redis" and not self.redis_url:
            raise ValueError("GATEHOUSE_RATE_LIMIT_STORE=redis needs REDIS_URL")
        return self

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if not self.redis_url and self.rate_limit_store != "memory":
            problems.append(
                "REDIS_URL is not set: each gateway replica would keep rate limits of its own; "
                "set REDIS_URL, or GATEHOUSE_RATE_LIMIT_STORE=memory for one replica on purpose"
            )
        return problems

    def admin_bind(self) -> str:
        return self.admin_host if self.admin_host else self.host

    def upstream_overrides(
        self, environ: Mapping[str, str] | None = None
    ) -> dict[str, tuple[str, ...]]:
        """Upstream name -> replica URLs from every ``GATEHOUSE_UPSTREAM_<NAME>_URL``.

        The value is one URL or several separated by commas (replicas the gateway
        balances across). ``<NAME>`` is the upstream's name in upper case with ``-``
        written ``_``; it is matched against gateway.yaml when the config is loaded.
        """
        found: dict[str, tuple[str, ...]] = {}
        for variable, value in (os.environ if environ is None else environ).items():
            if (match := _UPSTREAM_VARIABLE.match(variable)) and value.strip():
                found[match.group(1).lower()] = _urls(variable, value)
        given = {
            "authors": self.upstream_authors_url,
            "realtime": self.upstream_realtime_url,
            "auth": self.upstream_auth_url,
        }
        for name, given_url in given.items():
            if given_url:
                found[name] = _urls(f"GATEHOUSE_UPSTREAM_{name.upper()}_URL", given_url)
        return found


def _urls(variable: str, value: str) -> tuple[str, ...]:
    urls = []
    for url in (part.strip() for part in value.split(",")):
        checked = check_url(url, variable, ("http", "https"))
        if checked:
            urls.append(checked.rstrip("/"))
    return tuple(urls)
