"""Settings of the auth service, read from the environment and checked at start-up."""

from __future__ import annotations

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from gatehouse.auth.database import DATABASE_SCHEMES, normalize_database_url
from gatehouse.common.events import EXCHANGE
from gatehouse.common.settings import (
    DEFAULT_CLIENT_ID,
    DEFAULT_REALM,
    PORTS,
    CommonSettings,
    check_url,
)

HTTP_SCHEMES = ("http", "https")
DATABASE_FILE = "auth.db"
KEY_LEEWAY_SECONDS = 60  # JWTVerifier's leeway (30 s) and clock skew between replicas


class AuthSettings(CommonSettings):
    """The auth service: the embedded issuer, or a real Keycloak when ``KEYCLOAK_URL`` is set."""

    verifies_tokens = False  # it is the issuer, or reads Keycloak's realm from KEYCLOAK_URL

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
    # Production runs the embedded issuer only when asked to, with its key encrypted at rest.
    embedded_issuer_opt_in: bool = Field(False, validation_alias="GATEHOUSE_AUTH_EMBEDDED_ISSUER")
    key_passphrase: SecretStr | None = Field(None, validation_alias="GATEHOUSE_AUTH_KEY_PASSPHRASE")
    access_token_ttl: int = Field(
        300, ge=10, le=86400, validation_alias="GATEHOUSE_AUTH_ACCESS_TTL"
    )
    refresh_token_ttl: int = Field(
        1800, ge=60, le=30 * 86400, validation_alias="GATEHOUSE_AUTH_REFRESH_TTL"
    )
    session_max_ttl: int = Field(
        36000, ge=60, le=90 * 86400, validation_alias="GATEHOUSE_AUTH_SESSION_MAX_TTL"
    )
    # A retry of a refresh within this many seconds gets the same answer (0: none).
    refresh_grace_seconds: float = Field(
        5, ge=0, le=60, validation_alias="GATEHOUSE_AUTH_REFRESH_GRACE_SECONDS"
    )
    # Failed logins (embedded/lockout.py): throttle per username and address, slowdown per
    # username, hard lock only after many more failures.
    throttle_failures: int = Field(
        5, ge=1, le=1000, validation_alias="GATEHOUSE_AUTH_THROTTLE_FAILURES"
    )
    throttle_max_seconds: int = Field(
        900, ge=1, le=86400, validation_alias="GATEHOUSE_AUTH_THROTTLE_MAX_SECONDS"
    )
    slowdown_failures: int = Field(
        10, ge=1, le=10000, validation_alias="GATEHOUSE_AUTH_SLOWDOWN_FAILURES"
    )
    slowdown_max_seconds: int = Field(
        60, ge=1, le=3600, validation_alias="GATEHOUSE_AUTH_SLOWDOWN_MAX_SECONDS"
    )
    lockout_failures: int = Field(
        100, ge=1, le=100_000, validation_alias="GATEHOUSE_AUTH_LOCKOUT_FAILURES"
    )
    lockout_seconds: int = Field(
        900, ge=1, le=86400, validation_alias="GATEHOUSE_AUTH_LOCKOUT_SECONDS"
    )
    failure_reset_seconds: int = Field(
        3600, ge=1, le=30 * 86400, validation_alias="GATEHOUSE_AUTH_FAILURE_RESET_SECONDS"
    )
    # Key ring: how often each replica looks for a key added elsewhere, and how long a
    # new key is published before it signs. That must exceed the poll plus the 10 s a
    # JWTVerifier waits between JWKS reloads: a verifier that reloaded just before the
    # rotation can then reload again by the time a token carries the new kid.
    key_poll_seconds: float = Field(
        2.0, gt=0, le=300, validation_alias="GATEHOUSE_AUTH_KEY_POLL_SECONDS"
    )
    key_activation_seconds: float = Field(
        20.0, ge=0, le=86400, validation_alias="GATEHOUSE_AUTH_KEY_ACTIVATION_SECONDS"
    )
    # Where the admin API's gatehouse.user.* events go; unset, they wait in auth_audit.
    amqp_url: str | None = Field(None, validation_alias="AMQP_URL")
    amqp_exchange: str = Field(EXCHANGE, min_length=1, validation_alias="GATEHOUSE_AMQP_EXCHANGE")

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

    @field_validator("amqp_url")
    @classmethod
    def _amqp_url(cls, value: str | None) -> str | None:
        return check_url(value, "AMQP_URL", ("amqp", "amqps"))

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
    def _lockout(self) -> AuthSettings:
        # Before #11 GATEHOUSE_AUTH_LOCKOUT_FAILURES=5 locked a username from anywhere; a
        # hard lock that early is what the throttle and the slowdown replace.
        if self.lockout_failures <= self.slowdown_failures:
            raise ValueError(
                f"GATEHOUSE_AUTH_LOCKOUT_FAILURES ({self.lockout_failures}) must be greater "
                f"than GATEHOUSE_AUTH_SLOWDOWN_FAILURES ({self.slowdown_failures}): the hard "
                "lock comes after the slowdown (docs/configuration.md, failed logins)"
            )
        longest = max(self.lockout_seconds, self.throttle_max_seconds, self.slowdown_max_seconds)
        if self.failure_reset_seconds < longest:
            raise ValueError(
                f"GATEHOUSE_AUTH_FAILURE_RESET_SECONDS ({self.failure_reset_seconds}) must be "
                f"at least the longest lock or delay ({longest} s)"
            )
        return self

    _public_url_given: bool = PrivateAttr(False)

    @model_validator(mode="after")
    def _defaults(self) -> AuthSettings:
        self._public_url_given = bool(self.public_url)
        if not self.public_url:
            self.public_url = self._default_public_url()
        return self

    def _default_public_url(self) -> str:
        # A wildcard bind address is no address a client can reach.
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def embedded(self) -> bool:
        """True when this service issues tokens itself (no ``KEYCLOAK_URL``)."""
        return self.keycloak_url is None

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if not self.embedded:
            return problems
        if not self.embedded_issuer_opt_in:
            return [
                *problems,
                "KEYCLOAK_URL is not set: production signs in through Keycloak; set "
                "KEYCLOAK_URL, or GATEHOUSE_AUTH_EMBEDDED_ISSUER=true to run the embedded "
                "issuer on purpose",
            ]
        if self.key_passphrase is None:
            problems.append(
                "GATEHOUSE_AUTH_KEY_PASSPHRASE is not set: the embedded issuer's signing "
                "key must be encrypted at rest in production"
            )
        if not self._public_url_given:
            problems.append(
                f"GATEHOUSE_AUTH_PUBLIC_URL is not set: tokens would name {self.public_url} "
                "as their issuer, an address of this machine only"
            )
        return problems

    @property
    def demo_users(self) -> bool:
        """Whether the embedded issuer creates the demo identities: always in the embedded
        profile, in production only when ``GATEHOUSE_DEMO_PASSWORD`` is set."""
        return not self.production or self.demo_password is not None

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: ``GATEHOUSE_AUTH_DATABASE_URL`` or ``<data_dir>/auth.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    def database_setting(self) -> str:
        """The variable to blame when the database cannot be reached."""
        return "GATEHOUSE_AUTH_DATABASE_URL" if self.database_url else "GATEHOUSE_DATA_DIR"

    def key_overlap(self) -> float:
        """How long a retired key stays published: the longest life of a token it signed
        (access and ID tokens; refresh tokens are not signed) plus verifiers' leeway."""
        return self.access_token_ttl + KEY_LEEWAY_SECONDS

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
