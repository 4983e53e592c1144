"""Settings shared by every service: typed, from the environment, checked at start-up.

An absent URL picks the embedded default; a URL that is present but wrong is a
start-up error that names the variable (DESIGN §2), never a silent fallback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gatehouse.common.errors import UnsafeForProduction
from gatehouse.common.events import EXCHANGE
from gatehouse.common.requests import DEFAULT_TRUSTED_PROXIES, IPNetwork

Profile = Literal["embedded", "production"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
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
        raise ValueError(f"{setting} must start with one of {allowed}; got {mask_url(value)!r}")
    if not parts.scheme.startswith("sqlite") and not parts.hostname:
        raise ValueError(f"{setting} has no host: {mask_url(value)!r}")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise ValueError(
            f"{setting} has a port that is not a number: {mask_url(value)!r}"
        ) from None
    return value


class _VariablesOnly(EnvSettingsSource):
    """The environment, read by each setting's variable name only.

    ``populate_by_name`` lets code and tests pass field names (``oidc_issuer=...``);
    pydantic-settings would then also read the *field name* from the environment, so
    the auth service's ``database_url`` took the authors' ``DATABASE_URL``, and a
    Kubernetes service named ``auth`` (``AUTH_PORT=tcp://...``) broke every service.
    """

    def _extract_field_info(
        self, field: FieldInfo, field_name: str, model_config: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str, bool]]:
        config = {**(model_config or self.config)}
        if field.validation_alias is not None:
            config.update(populate_by_name=False, validate_by_name=False)
        return super()._extract_field_info(field, field_name, config)


class CommonSettings(BaseSettings):
    """What every service reads: profile, identity provider, data folder, logging.

    ``GATEHOUSE_PROFILE``: ``embedded`` (the default of ``create_app`` and of
    ``gatehouse run all``) keeps the defaults that are safe on one machine;
    ``production`` (the default of ``gatehouse run <service>``) refuses to start
    while :meth:`production_problems` lists any.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)
    # Whether this service verifies tokens of OIDC_ISSUER (the auth service knows its own).
    verifies_tokens: ClassVar[bool] = True

    profile: Profile = Field("embedded", validation_alias="GATEHOUSE_PROFILE")
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _VariablesOnly(settings_cls), dotenv_settings, file_secret_settings

    @field_validator("profile", mode="before")
    @classmethod
    def _profile(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in ("embedded", "production"):
            return value.strip().lower()
        raise ValueError(f"GATEHOUSE_PROFILE must be embedded or production; got {value!r}")

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
            return value.strip().upper()
        raise ValueError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}; got {value!r}")

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

    @property
    def production(self) -> bool:
        return self.profile == "production"

    def production_problems(self) -> list[str]:
        """The defaults these settings keep that are safe on one machine only.

        One line each, naming the variable to set. A service's settings extend the
        list (``super().production_problems() + [...]``); the launcher refuses to
        start a production service while it is not empty.
        """
        if self.verifies_tokens and not self.oidc_issuer:
            return [
                "OIDC_ISSUER is not set: tokens would be checked against the embedded "
                f"issuer on {embedded_issuer(port=self.auth_port)}, which is one machine's"
            ]
        return []

    def check_profile(self) -> None:
        """Raise :class:`UnsafeForProduction` when production and a problem is listed."""
        if self.production and (problems := self.production_problems()):
            raise UnsafeForProduction(problems)


class BusSettings(CommonSettings):
    """A service on the event bus: ``AMQP_URL`` (absent: the in-process bus)."""

    amqp_url: str | None = Field(None, validation_alias="AMQP_URL")
    amqp_exchange: str = Field(EXCHANGE, min_length=1, validation_alias="GATEHOUSE_AMQP_EXCHANGE")

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str | None) -> str | None:
        return check_url(value, "AMQP_URL", ("amqp", "amqps"))

    def bus_url(self) -> str:
        """``AMQP_URL``, or ``memory://`` (for :func:`gatehouse.common.bus.bus_from_url`)."""
        return self.amqp_url or "memory://"

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if not self.amqp_url:
            problems.append(
                "AMQP_URL is not set: the in-process event bus reaches no other process"
            )
        return problems
