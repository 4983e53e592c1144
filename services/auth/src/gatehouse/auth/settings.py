"""Settings of the auth service, read from the environment and checked at start-up."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from gatehouse.auth.database import DATABASE_SCHEMES, normalize_database_url
from gatehouse.common.settings import (
    DEFAULT_CLIENT_ID,
    DEFAULT_REALM,
    PORTS,
    CommonSettings,
    check_url,
)

HTTP_SCHEMES = ("http", "https")
DATABASE_FILE = "auth.db"


class AuthSettings(CommonSettings):
    """The auth service: the embedded issuer, or a real Keycloak when ``KEYCLOAK_URL`` is set."""

    port: int = Field(PORTS["auth"], ge=1, le=65535, validation_alias="GATEHOUSE_AUTH_PORT")
    public_url: str = Field("", validation_alias="GATEHOUSE_AUTH_PUBLIC_URL")
    keycloak_url: str | None = Field(None, validation_alias="KEYCLOAK_URL")
    realm: str = Field(
        DEFAULT_REALM, pattern=r"^[A-Za-z0-9._-]{1,64}$", validation_alias="GATEHOUSE_AUTH_REALM"
    )
    client_id: str = Field(
        DEFAULT_CLIENT_ID,
        min_length=1,
        max_length=255,
        validation_alias=AliasChoices("GATEHOUSE_AUTH_CLIENT_ID", "OIDC_AUDIENCE"),
    )
    client_secret: SecretStr | None = Field(None, validation_alias="GATEHOUSE_AUTH_CLIENT_SECRET")
    database_url: str | None = Field(None, validation_alias="GATEHOUSE_AUTH_DATABASE_URL")
    demo_password: SecretStr | None = Field(None, validation_alias="GATEHOUSE_DEMO_PASSWORD")
    access_token_ttl: int = Field(
        300, ge=10, le=86400, validation_alias="GATEHOUSE_AUTH_ACCESS_TTL"
    )
    refresh_token_ttl: int = Field(
        1800, ge=60, le=30 * 86400, validation_alias="GATEHOUSE_AUTH_REFRESH_TTL"
    )
    session_max_ttl: int = Field(
        36000, ge=60, le=90 * 86400, validation_alias="GATEHOUSE_AUTH_SESSION_MAX_TTL"
    )
    lockout_failures: int = Field(
        5, ge=1, le=1000, validation_alias="GATEHOUSE_AUTH_LOCKOUT_FAILURES"
    )
    lockout_seconds: int = Field(
        300, ge=1, le=86400, validation_alias="GATEHOUSE_AUTH_LOCKOUT_SECONDS"
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        checked = check_url(value, "GATEHOUSE_AUTH_PUBLIC_URL", HTTP_SCHEMES)
        return checked.rstrip("/") if checked else ""

    @field_validator("keycloak_url")
    @classmethod
    def _keycloak_url(cls, value: str | None) -> str | None:
        checked = check_url(value, "KEYCLOAK_URL", HTTP_SCHEMES)
        return checked.rstrip("/") if checked else None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        checked = check_url(value, "GATEHOUSE_AUTH_DATABASE_URL", DATABASE_SCHEMES)
        return normalize_database_url(checked) if checked else None

    @field_validator("demo_password")
    @classmethod
    def _demo_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 8:
            raise ValueError("GATEHOUSE_DEMO_PASSWORD must have at least 8 characters")
        return value

    @model_validator(mode="after")
    def _defaults(self) -> AuthSettings:
        if not self.public_url:
            # A wildcard bind address is no address a client can reach.
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"http://{host}:{self.port}"
        return self

    @property
    def embedded(self) -> bool:
        """True when this service issues tokens itself (no ``KEYCLOAK_URL``)."""
        return self.keycloak_url is None

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: ``GATEHOUSE_AUTH_DATABASE_URL`` or ``<data_dir>/auth.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    def database_setting(self) -> str:
        """The variable to blame when the database cannot be reached."""
        return "GATEHOUSE_AUTH_DATABASE_URL" if self.database_url else "GATEHOUSE_DATA_DIR"

    def embedded_issuer_url(self) -> str:
        """``<public_url>/realms/<realm>``: the ``iss`` of the tokens the embedded issuer signs."""
        return f"{self.public_url}/realms/{self.realm}"

    def issuer(self) -> str:
        """``OIDC_ISSUER`` when set, else Keycloak's realm URL, else the embedded issuer's."""
        if self.oidc_issuer:
            return self.oidc_issuer
        if self.keycloak_url:
            return f"{self.keycloak_url}/realms/{self.realm}"
        return self.embedded_issuer_url()
