"""Memory of idle WebSockets proxied by the gateway (DESIGN §11: realtime + gateway ≤ 40 KB
a connection; the gateway's share aimed at ≤ 20 KB).

Starts an idle WebSocket upstream (bench/ws_upstream.py), the embedded auth service and
`gatehouse run gateway`, opens N authenticated sockets through the gateway, waits until
they all said hello, and reports the growth of the gateway process's resident memory
(VmRSS) per connection, after a warm-up batch so that allocator arenas and imports
are not counted.

    .venv/bin/python bench/gateway_ws_memory.py [--connections 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).parent))
from gateway_overhead import CONFIG, GATEHOUSE, PASSWORD, Processes, free_port, wait_http


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def open_many(url: str, token: str, count: int) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    headers = {"Authorization": f"Bearer {token}"}
    for start in range(0, count, 50):
        batch = await asyncio.gather(
            *(
                connect(url, additional_headers=headers, compression=None, ping_interval=None)
                for _ in range(min(50, count - start))
            )
        )
        for ws in batch:
            await ws.recv()  # the upstream's hello: the proxied pair is complete
        sockets += batch
    return sockets


async def measure(url: str, token: str, pid: int, count: int) -> None:
    warm = await open_many(url, token, 100)
    await asyncio.sleep(1)
    before = rss_kb(pid)
    sockets = await open_many(url, token, count)
    await asyncio.sleep(2)  # settle: idle sockets only
    after = rss_kb(pid)
    print(f"gateway RSS {before} KB -> {after} KB with {count} more idle sockets")
    print(f"gateway memory per idle proxied WebSocket: {(after - before) / count:.1f} KB")
    for ws in [*warm, *sockets]:
        await ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.connections)), hard))
    ports = {n: free_port() for n in ("upstream", "auth", "gw", "admin")}
    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp))
        try:
            procs.start(
                "ws",
                [
                    sys.executable,
                    str(Path(__file__).parent / "ws_upstream.py"),
                    str(ports["upstream"]),
                ],
            )
            procs.start(
                "auth",
                [GATEHOUSE, "run", "auth"],
                {"GATEHOUSE_AUTH_PORT": str(ports["auth"]), "GATEHOUSE_PROFILE": "embedded"},
            )
            auth = f"http://127.0.0.1:{ports['auth']}"
            wait_http(f"{auth}/readyz")
            pid = procs.start(
                "gateway",
                [GATEHOUSE, "run", "gateway"],
                {
                    "GATEHOUSE_PROFILE": "embedded",
                    "GATEHOUSE_RATE_LIMIT_STORE": "memory",
                    "GATEHOUSE_GATEWAY_CONFIG": str(CONFIG),
                    "GATEHOUSE_GATEWAY_PORT": str(ports["gw"]),
                    "GATEHOUSE_ADMIN_PORT": str(ports["admin"]),
                    "GATEHOUSE_AUTH_PORT": str(ports["auth"]),
                    "GATEHOUSE_UPSTREAM_REALTIME_URL": f"http://127.0.0.1:{ports['upstream']}",
                    "GATEHOUSE_UPSTREAM_AUTHORS_URL": f"http://127.0.0.1:{ports['upstream']}",
                    "GATEHOUSE_UPSTREAM_AUTH_URL": auth,
                },
            )
            wait_http(f"http://127.0.0.1:{ports['gw']}/readyz")
            token = httpx.post(
                f"{auth}/auth/token", json={"username": "viewer", "password": PASSWORD}
            ).json()["access_token"]
            started = time.monotonic()
            asyncio.run(measure(f"ws://127.0.0.1:{ports['gw']}/ws", token, pid, args.connections))
            print(f"({time.monotonic() - started:.0f} s)")
        finally:
            procs.stop()


if __name__ == "__main__":
    main()
