"""The start-up banner of monolithic mode: where everything is and how to log in."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

USERS = ("admin", "editor", "viewer", "auditor", "nobody")


def print_banner(gateway: Any, new_password: str | None, credentials: Path | None) -> None:
    base = f"http://{gateway.host}:{gateway.port}"
    if new_password is not None:
        login_hint = f"password (generated now, shown once): {new_password}"
    else:
        login_hint = "password: the one kept in the file below"
    if credentials is None:
        login_hint = "password: GATEHOUSE_DEMO_PASSWORD"
    lines = [
        "",
        "Gatehouse is running (monolithic mode: gatehouse run all)",
        f"  gateway   {base}        <- the only address clients use",
        f"  health    {base}/readyz   metrics "
        f"http://{gateway.admin_bind()}:{gateway.admin_port}/metrics (admin port)",
        f"  API       {base}/api/v1/authors",
        f"  events    ws://{gateway.host}:{gateway.port}/ws",
        f'  login     POST {base}/auth/token  {{"username": "editor", "password": ...}}',
        f"  users     {', '.join(USERS)}",
        f"  {login_hint}",
        f"  demo credentials file: {credentials.resolve() if credentials else '(none)'}",
        "  Ctrl+C stops everything.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
