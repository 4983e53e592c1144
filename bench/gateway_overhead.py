"""Gateway cost per authenticated, RBAC-checked, rate-limited, proxied GET (DESIGN §11).

Starts auth, authors and the gateway as separate `gatehouse` processes (embedded
defaults, logs at WARNING), creates one author with a ~1 KB body, then drives
`GET /api/v1/authors/{id}` with wrk: once straight at authors, once through the
gateway. Reports requests/s, latency percentiles and the gateway process's CPU
time per request (from /proc, user+system).

    .venv/bin/python bench/gateway_overhead.py [--connections 32] [--seconds 10]

``--profile FILE`` runs the gateway under cProfile (read the file with pstats).

Needs `wrk` (Debian: apt-get install wrk). Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
PASSWORD = "bench-password-1"
CONFIG = Path(__file__).parent / "gateway-bench.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    mode: str, env: dict[str, str], folder: Path, profile: str | None = None
) -> subprocess.Popen[bytes]:
    log = (folder / f"{mode}.log").open("wb")
    full = {**os.environ, "LOG_LEVEL": "WARNING", "GATEHOUSE_DEMO_PASSWORD": PASSWORD, **env}
    for name in ("DATABASE_URL", "REDIS_URL", "AMQP_URL"):
        full.pop(name, None)
    command = [GATEHOUSE, "run", mode]
    if profile:  # cProfile writes the file when the process ends (SIGTERM below)
        command = [sys.executable, "-m", "cProfile", "-o", str(Path(profile).resolve()), *command]
    return subprocess.Popen(command, env=full, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        result[f"p{pct}_ms"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="run the gateway under cProfile and write the stats to FILE (CPU figures inflate)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    ports = {name: free_port() for name in ("gateway", "authors", "auth")}
    env = {f"GATEHOUSE_{n.upper()}_PORT": str(p) for n, p in ports.items()}
    env |= {
        f"GATEHOUSE_UPSTREAM_{n.upper()}_URL": f"http://127.0.0.1:{p}"
        for n, p in ports.items()
        if n != "gateway"
    }
    env["GATEHOUSE_GATEWAY_CONFIG"] = str(CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([GATEHOUSE, "migrate"], cwd=folder, check=True, capture_output=True)
        procs = {mode: start(mode, env, folder) for mode in ("auth", "authors")}
        procs["gateway"] = start("gateway", env, folder, args.profile)
        try:
            run(ports, procs["gateway"].pid, args)
        finally:
            for proc in procs.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)


def run(ports: dict[str, int], gateway_pid: int, args: argparse.Namespace) -> None:
    gateway, authors = (f"http://127.0.0.1:{ports[n]}" for n in ("gateway", "authors"))
    for url in (f"http://127.0.0.1:{ports['auth']}", authors, gateway):
        wait_ready(url)
    login = httpx.post(f"{gateway}/auth/token", json={"username": "editor", "password": PASSWORD})
    if login.status_code != 200:
        raise SystemExit(f"login through the gateway failed: {login.status_code} {login.text}")
    token = login.json()["access_token"]
    for _ in range(50):  # authors may still be loading the issuer's keys: honour Retry-After
        created = httpx.post(
            f"{gateway}/api/v1/authors",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "Bench Author", "bio": "x" * 900},
        )
        if created.status_code != 503:
            break
        time.sleep(0.2)
    if created.status_code != 201:
        raise SystemExit(f"creating an author failed: {created.status_code} {created.text}")
    author = created.json()["id"]
    wrk(f"{gateway}/api/v1/authors/{author}", token, args.connections, 2)  # warm-up
    direct = wrk(f"{authors}/v1/authors/{author}", token, args.connections, args.seconds)
    before = cpu_seconds(gateway_pid)
    proxied = wrk(f"{gateway}/api/v1/authors/{author}", token, args.connections, args.seconds)
    cpu = cpu_seconds(gateway_pid) - before
    print(f"connections={args.connections} seconds={args.seconds} body~{len(created.content)} B")
    for name, r in (("direct to authors", direct), ("through gateway", proxied)):
        print(
            f"{name:18} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
            f"p99 {r['p99_ms']:.2f} ms  non-2xx {r['non_2xx']:.0f}"
        )
    print(
        f"gateway CPU per request: {cpu / proxied['requests'] * 1e6:.0f} us "
        f"({cpu:.2f} s CPU for {proxied['requests']:.0f} requests)"
    )


if __name__ == "__main__":
    main()
