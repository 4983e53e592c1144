"""Settings of the authors service, from the environment, checked at start-up."""

from __future__ import annotations

from pydantic import Field, field_validator

from gatehouse.authors.adapters.database import Pool
from gatehouse.common.settings import PORTS, BusSettings, check_url
from gatehouse.common.sql import DATABASE_SCHEMES, is_sqlite_url, normalize_database_url


class AuthorsSettings(BusSettings):
    """``DATABASE_URL`` absent: SQLite in the data folder; ``AMQP_URL`` absent: in-process bus."""

    port: int = Field(PORTS["authors"], validation_alias="GATEHOUSE_AUTHORS_PORT")
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    run_relay: bool = Field(True, validation_alias="GATEHOUSE_AUTHORS_RELAY")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    cache_size: int = Field(10_000, ge=0, validation_alias="GATEHOUSE_AUTHORS_CACHE_SIZE")
    cache_ttl: float = Field(2.0, ge=0, le=3600, validation_alias="GATEHOUSE_AUTHORS_CACHE_TTL")
    cache_redis_ttl: int = Field(
        300, ge=1, le=86_400, validation_alias="GATEHOUSE_AUTHORS_CACHE_REDIS_TTL"
    )
    cache_prefix: str = Field(
        "gatehouse:authors:", min_length=1, validation_alias="GATEHOUSE_AUTHORS_CACHE_PREFIX"
    )
    require_if_match: bool = Field(False, validation_alias="GATEHOUSE_AUTHORS_REQUIRE_IF_MATCH")
    rpc: bool = Field(True, validation_alias="GATEHOUSE_AUTHORS_RPC")
    key_sweep_interval: float = Field(
        600, gt=0, le=86_400, validation_alias="GATEHOUSE_AUTHORS_KEY_SWEEP_INTERVAL"
    )
    # The PostgreSQL pool of each process (the relay's connection is one of them):
    # pool_size kept open, max_overflow more opened under load and closed when returned.
    db_pool_size: int = Field(20, ge=1, le=1000, validation_alias="GATEHOUSE_AUTHORS_DB_POOL_SIZE")
    db_max_overflow: int = Field(
        10, ge=0, le=1000, validation_alias="GATEHOUSE_AUTHORS_DB_MAX_OVERFLOW"
    )
    db_pool_recycle: float = Field(
        1800, ge=0, le=86_400, validation_alias="GATEHOUSE_AUTHORS_DB_POOL_RECYCLE"
    )
    db_ping_idle: float = Field(
        1.0, ge=0, le=3600, validation_alias="GATEHOUSE_AUTHORS_DB_PING_IDLE"
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        checked = check_url(value, "DATABASE_URL", DATABASE_SCHEMES)
        return normalize_database_url(checked) if checked else None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return check_url(value, "REDIS_URL", ("redis", "rediss", "unix"))

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.database_url is None or is_sqlite_url(self.database_url):
            problems.append(
                "DATABASE_URL is not set: SQLite is one machine's file; replicas need PostgreSQL"
            )
        return problems

    def pool(self) -> Pool:
        """The pool settings, as :func:`gatehouse.authors.adapters.database.create_engine`
        takes them (PostgreSQL only; SQLite keeps SQLAlchemy's own pool)."""
        return Pool(
            self.db_pool_size, self.db_max_overflow, self.db_pool_recycle, self.db_ping_idle
        )

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: ``DATABASE_URL`` or ``<data_dir>/authors.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'authors.db').resolve()}"
