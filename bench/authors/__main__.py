"""The authors service on PostgreSQL: req/s and latency of get-by-id, list (50 a page)
and create, straight at authors and through the gateway (issue #7).

Starts auth, authors (on a fresh PostgreSQL database, its relay on) and the gateway
as separate `gatehouse` processes, seeds 200 authors, then drives each operation
with wrk, direct and proxied. The same-run reference is authors' own `/healthz`
(no database, no token): each figure is also given as a share of it. CPU per request
is user+system time (/proc) of the authors process and, through the gateway, of the
gateway process, over the run, divided by the requests wrk completed.

    .venv/bin/python bench/authors [--connections 32] [--seconds 10]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Needs `wrk` and a PostgreSQL it may create a database in. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway_overhead import CONFIG, GATEHOUSE, PASSWORD, cpu_seconds, free_port, wrk

CREATE = Path(__file__).with_name("create.lua")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"gh_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(args.postgres, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(args.postgres)
    database = urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _bench(Path(tmp), database, args)
    finally:
        asyncio.run(_sql(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _bench(folder: Path, database: str, args: argparse.Namespace) -> None:
    ports = {n: free_port() for n in ("gateway", "authors", "auth")}
    env = {f"GATEHOUSE_{n.upper()}_PORT": str(p) for n, p in ports.items()}
    env |= {
        f"GATEHOUSE_UPSTREAM_{n.upper()}_URL": f"http://127.0.0.1:{ports[n]}"
        for n in ("authors", "auth")
    }
    env |= {
        "GATEHOUSE_GATEWAY_CONFIG": str(CONFIG),
        "GATEHOUSE_PROFILE": "embedded",
        "GATEHOUSE_ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        "GATEHOUSE_DEMO_PASSWORD": PASSWORD,
    }
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "AMQP_URL")}
    authors_env = {**base, **env, "DATABASE_URL": database}
    subprocess.run(
        [GATEHOUSE, "migrate", "authors"],
        cwd=folder,
        env=authors_env,
        check=True,
        capture_output=True,
    )
    procs = [
        _start("auth", {**base, **env}, folder),
        _start("authors", authors_env, folder),
        _start("gateway", {**base, **env}, folder),
    ]
    try:
        _measure(ports, {"authors": procs[1].pid, "gateway": procs[2].pid}, args)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def _start(mode: str, env: dict[str, str], folder: Path) -> subprocess.Popen[bytes]:
    log = (folder / f"{mode}.log").open("wb")
    return subprocess.Popen(
        [GATEHOUSE, "run", mode], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT
    )


def _measure(ports: dict[str, int], pids: dict[str, int], args: argparse.Namespace) -> None:
    gateway, authors = (f"http://127.0.0.1:{ports[n]}" for n in ("gateway", "authors"))
    for url in (f"http://127.0.0.1:{ports['auth']}", authors, gateway):
        wait_ready(url)
    token = _login(gateway)
    author = _seed(authors, token, 200)
    runs = {
        "reference: authors /healthz": [(f"{authors}/healthz", None)],
        "get by id": [
            (f"{authors}/v1/authors/{author}", None),
            (f"{gateway}/api/v1/authors/{author}", None),
        ],
        "list, 50 a page": [
            (f"{authors}/v1/authors?per_page=50", None),
            (f"{gateway}/api/v1/authors?per_page=50", None),
        ],
        "create": [(f"{authors}/v1/authors", CREATE), (f"{gateway}/api/v1/authors", CREATE)],
    }
    print(f"connections={args.connections} seconds={args.seconds} PostgreSQL, relay on, no Redis")
    reference = 0.0
    for label, targets in runs.items():
        for (url, script), where in zip(targets, ("direct", "gateway"), strict=False):
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            result = _wrk(url, token, args, script)
            cpu = {
                name: (cpu_seconds(pid) - before[name]) / max(result["requests"], 1) * 1e6
                for name, pid in pids.items()
            }
            reference = reference or result["rps"]
            share = result["rps"] / reference
            gateway_cpu = f"  gateway {cpu['gateway']:6.0f} µs" if where == "gateway" else ""
            print(
                f"{label:28} {where:8} {result['rps']:8.0f} req/s ({share:5.1%})"
                f"  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                f"  non-2xx {result['non_2xx']:.0f}"
                f"  CPU/request: authors {cpu['authors']:6.0f} µs{gateway_cpu}"
            )


def _wrk(url: str, token: str, args: argparse.Namespace, script: Path | None) -> dict[str, float]:
    if script is None:
        return wrk(url, token, args.connections, args.seconds)
    return _wrk_script(url, token, args, script)


def _wrk_script(url: str, token: str, args: argparse.Namespace, script: Path) -> dict[str, float]:
    import re

    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--latency",
            "-s",
            str(script),
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=args.seconds + 30,
    ).stdout
    found = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    found["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        found[f"p{pct}_ms"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    found["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return found


def _login(gateway: str) -> str:
    login = httpx.post(f"{gateway}/auth/token", json={"username": "admin", "password": PASSWORD})
    if login.status_code != 200:
        raise SystemExit(f"login failed: {login.status_code} {login.text}")
    token: str = login.json()["access_token"]
    return token


def _seed(authors: str, token: str, count: int) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    first = ""
    with httpx.Client(base_url=authors, headers=headers, timeout=30) as client:
        for i in range(count):
            created = client.post("/v1/authors", json={"name": f"Seed {i}", "bio": "x" * 900})
            if created.status_code != 201:
                raise SystemExit(f"seeding failed: {created.status_code} {created.text}")
            first = first or created.json()["id"]
    return first


def wait_ready(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


async def _sql(admin: str, statement: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
