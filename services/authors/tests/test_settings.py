from pathlib import Path

import pytest
from pydantic import ValidationError

from gatehouse.authors.settings import AuthorsSettings


def test_defaults_are_the_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "AMQP_URL", "GATEHOUSE_AUTHORS_PORT", "GATEHOUSE_AUTHORS_RELAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEHOUSE_DATA_DIR", str(tmp_path))

    settings = AuthorsSettings()

    assert settings.port == 8001
    assert settings.amqp_url is None
    assert settings.run_relay is True
    assert settings.amqp_exchange == "gatehouse.events"
    assert settings.sqlalchemy_url() == f"sqlite+aiosqlite:///{tmp_path.resolve()}/authors.db"


def test_environment_overrides_and_postgres_urls_get_the_async_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/authors")
    monkeypatch.setenv("AMQP_URL", "amqp://guest:guest@mq:5672/")
    monkeypatch.setenv("GATEHOUSE_AUTHORS_PORT", "9001")
    monkeypatch.setenv("GATEHOUSE_AUTHORS_RELAY", "false")

    settings = AuthorsSettings()

    assert settings.sqlalchemy_url() == "postgresql+asyncpg://u:p@db:5432/authors"
    assert (settings.port, settings.run_relay) == (9001, False)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://db/x"),
        ("DATABASE_URL", "postgresql:///nohost"),
        ("AMQP_URL", "http://mq"),
    ],
)
def test_a_wrong_url_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        AuthorsSettings()


def test_the_postgres_pool_is_sized_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from gatehouse.authors.adapters.database import Pool, create_engine

    monkeypatch.setenv("GATEHOUSE_AUTHORS_DB_POOL_SIZE", "7")
    monkeypatch.setenv("GATEHOUSE_AUTHORS_DB_MAX_OVERFLOW", "3")
    monkeypatch.setenv("GATEHOUSE_AUTHORS_DB_POOL_RECYCLE", "0")
    monkeypatch.setenv("GATEHOUSE_AUTHORS_DB_PING_IDLE", "2.5")

    pool = AuthorsSettings().pool()
    engine = create_engine("postgresql://u:p@db:5432/authors", pool)

    assert pool == Pool(size=7, overflow=3, recycle=0, ping_idle=2.5)
    assert (engine.pool.size(), engine.pool._max_overflow) == (7, 3)  # type: ignore[attr-defined]
    assert engine.pool._recycle == -1  # 0: never recycled
    assert engine.pool._pre_ping is False  # pinged when idle instead (test_database_outage)
