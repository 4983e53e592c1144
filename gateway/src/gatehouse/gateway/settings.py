"""Settings of the gateway process, read from the environment and checked at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_core.core_schema import ValidationInfo

from gatehouse.common.settings import PORTS, CommonSettings, check_url

_UPSTREAM_VARIABLES = {
    "upstream_authors_url": "GATEHOUSE_UPSTREAM_AUTHORS_URL",
    "upstream_realtime_url": "GATEHOUSE_UPSTREAM_REALTIME_URL",
    "upstream_auth_url": "GATEHOUSE_UPSTREAM_AUTH_URL",
}


class GatewaySettings(CommonSettings):
    """Process settings; routes, upstreams and policies live in ``gateway.yaml``."""

    port: int = Field(PORTS["gateway"], validation_alias="GATEHOUSE_GATEWAY_PORT", ge=0, le=65535)
    config_path: Path | None = Field(None, validation_alias="GATEHOUSE_GATEWAY_CONFIG")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    rate_limit_prefix: str = Field("gatehouse:rl:", validation_alias="GATEHOUSE_RATE_LIMIT_PREFIX")
    rate_limit_fail_open: bool = Field(True, validation_alias="GATEHOUSE_RATE_LIMIT_FAIL_OPEN")
    upstream_authors_url: str | None = Field(
        None, validation_alias="GATEHOUSE_UPSTREAM_AUTHORS_URL"
    )
    upstream_realtime_url: str | None = Field(
        None, validation_alias="GATEHOUSE_UPSTREAM_REALTIME_URL"
    )
    upstream_auth_url: str | None = Field(None, validation_alias="GATEHOUSE_UPSTREAM_AUTH_URL")

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        return check_url(value, "REDIS_URL", ("redis", "rediss", "unix"))

    @field_validator("upstream_authors_url", "upstream_realtime_url", "upstream_auth_url")
    @classmethod
    def _upstream(cls, value: str | None, info: ValidationInfo) -> str | None:
        variable = _UPSTREAM_VARIABLES[str(info.field_name)]
        checked = check_url(value, variable, ("http", "https"))
        return checked.rstrip("/") if checked else None

    def upstream_overrides(self) -> dict[str, str]:
        """Upstream name -> URL for every ``GATEHOUSE_UPSTREAM_<NAME>_URL`` that is set."""
        urls = {
            "authors": self.upstream_authors_url,
            "realtime": self.upstream_realtime_url,
            "auth": self.upstream_auth_url,
        }
        return {name: url for name, url in urls.items() if url}
