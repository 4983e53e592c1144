"""Settings shared by every service: typed, from the environment, checked at start-up.

An absent URL picks the embedded default; a URL that is present but wrong is a
start-up error that names the variable (DESIGN §2), never a silent fallback.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gatehouse.common.requests import DEFAULT_TRUSTED_PROXIES, IPNetwork

DEFAULT_REALM = "gatehouse"
DEFAULT_CLIENT_ID = "gatehouse"
PORTS = {"gateway": 8000, "authors": 8001, "realtime": 8002, "auth": 8003}


def embedded_issuer(host: str = "127.0.0.1", port: int = PORTS["auth"]) -> str:
    return f"http://{host}:{port}/realms/{DEFAULT_REALM}"


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a port that is not a number: mask what looks like one
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)
    if not password:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def check_url(value: str | None, setting: str, schemes: tuple[str, ...]) -> str | None:
    """Reject a URL whose scheme or host is wrong, naming the variable."""
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{setting} must start with one of {allowed}; got {parts.scheme!r}")
    if not parts.scheme.startswith("sqlite") and not parts.hostname:
        raise ValueError(f"{setting} has no host: {value!r}")
    return value


class CommonSettings(BaseSettings):
    """What every service reads: identity provider, data folder, logging."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", validation_alias="GATEHOUSE_HOST")
    data_dir: Path = Field(Path(".data"), validation_alias="GATEHOUSE_DATA_DIR")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="GATEHOUSE_LOG_JSON")
    oidc_issuer: str | None = Field(None, validation_alias="OIDC_ISSUER")
    oidc_audience: str = Field(DEFAULT_CLIENT_ID, validation_alias="OIDC_AUDIENCE")
    auth_port: int = Field(PORTS["auth"], validation_alias="GATEHOUSE_AUTH_PORT", ge=1, le=65535)
    # Peers whose X-Request-ID / traceparent / X-Forwarded-For a service believes.
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = Field(
        DEFAULT_TRUSTED_PROXIES,  # strings, validated into networks
        validate_default=True,
        validation_alias="GATEHOUSE_TRUSTED_PROXIES",
    )
    access_log: bool = Field(True, validation_alias="GATEHOUSE_ACCESS_LOG")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        try:
            return tuple(ipaddress.ip_network(part, strict=False) for part in value)
        except ValueError as exc:
            raise ValueError(f"GATEHOUSE_TRUSTED_PROXIES: {exc}") from None

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        checked = check_url(value, "OIDC_ISSUER", ("http", "https"))
        return checked.rstrip("/") if checked else None

    def issuer(self) -> str:
        """The configured issuer, or the embedded one of the auth service."""
        return self.oidc_issuer or embedded_issuer(port=self.auth_port)
