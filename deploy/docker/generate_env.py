"""Print a .env for docker-compose.yml: a random value for every ``${NAME:?...}`` it
requires (``make up`` runs it once; the volumes then keep those passwords)."""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path


def main(compose: str) -> None:
    names = sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", Path(compose).read_text())))
    for name in names:
        print(f"{name}={secrets.token_urlsafe(24)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docker-compose.yml")
