from __future__ import annotations

import stat
from pathlib import Path

from gatehouse.auth import demo_credentials
from gatehouse.auth.embedded.users import DEMO_ROLES

from .conftest import auth_settings


def test_the_password_from_the_environment_is_used_and_not_written(tmp_path: Path) -> None:
    creds = demo_credentials(auth_settings(tmp_path, GATEHOUSE_DEMO_PASSWORD="from-the-env"))
    assert (creds.password, creds.path, creds.newly_generated) == ("from-the-env", None, False)
    assert list(tmp_path.iterdir()) == []


def test_a_generated_password_is_kept_private_and_reused(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data", GATEHOUSE_DEMO_PASSWORD="")
    first = demo_credentials(settings)
    again = demo_credentials(settings)
    assert first.newly_generated
    assert not again.newly_generated
    assert again.password == first.password
    assert len(first.password) >= 12
    assert first.path == tmp_path / "data" / "demo-credentials"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    lines = [line for line in first.path.read_text().splitlines() if not line.startswith("#")]
    assert lines == [f"{name} {first.password}" for name in DEMO_ROLES]
