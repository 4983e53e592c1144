"""The demo password of the embedded mode: from the environment, or generated once and kept."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gatehouse.auth.embedded.users import DEMO_ROLES
from gatehouse.auth.settings import AuthSettings

CREDENTIALS_FILE = "demo-credentials"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """The demo users' password; ``path`` is None when it came from the environment."""

    password: str
    path: Path | None
    newly_generated: bool
    usernames: tuple[str, ...] = tuple(DEMO_ROLES)


def demo_credentials(settings: AuthSettings) -> DemoCredentials:
    """``GATEHOUSE_DEMO_PASSWORD`` when set; else the password kept in
    ``<data_dir>/demo-credentials``, generated (mode 0600) on the first call.

    The launcher calls this to print its banner; the app calls it to seed its users.
    """
    if settings.demo_password is not None:
        return DemoCredentials(settings.demo_password.get_secret_value(), None, False)
    path = settings.data_dir / CREDENTIALS_FILE
    if path.exists():
        return DemoCredentials(read_password(path), path, False)
    password = secrets.token_urlsafe(12)
    if _create(path, _render(password)):
        return DemoCredentials(password, path, True)
    return DemoCredentials(read_password(path), path, False)  # lost a race: use theirs


def read_password(path: Path) -> str:
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 2 and not line.startswith("#"):
            return fields[1]
    raise ValueError(f"{path} holds no 'username password' line; delete it to get a new one")


def _render(password: str) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    header = (
        f"# Gatehouse demo identities of the embedded issuer, generated {stamp}.\n"
        "# Set GATEHOUSE_DEMO_PASSWORD, or delete this file, to change the password.\n"
    )
    return header + "".join(f"{name} {password}\n" for name in DEMO_ROLES)


def _create(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return True
