"""Container HEALTHCHECK: GET /healthz of the service this container runs (stdlib only).

The URL is ``GATEHOUSE_HEALTHCHECK_URL`` when set, else ``/healthz`` on the loopback at
the service's port (``GATEHOUSE_<SERVICE>_PORT`` or its default). Exit 0 when healthy.
"""

from __future__ import annotations

import os
import sys
import urllib.request

DEFAULT_PORTS = {"all": 8000, "gateway": 8000, "authors": 8001, "realtime": 8002, "auth": 8003}


def health_url() -> str:
    explicit = os.environ.get("GATEHOUSE_HEALTHCHECK_URL")
    if explicit:
        return explicit
    service = os.environ.get("GATEHOUSE_SERVICE", "gateway")
    served = "gateway" if service == "all" else service
    port = os.environ.get(f"GATEHOUSE_{served.upper()}_PORT") or DEFAULT_PORTS.get(served, 8000)
    return f"http://127.0.0.1:{port}/healthz"


def main() -> int:
    try:
        with urllib.request.urlopen(health_url(), timeout=2) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
