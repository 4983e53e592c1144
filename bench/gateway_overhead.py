"""Gateway cost per authenticated, RBAC-checked, rate-limited, proxied GET, as ratios (DESIGN §11).

Every target proxies to the same static upstream (1 KB of JSON, uvicorn + httptools
+ uvloop, its own process), driven by wrk with the same connections and duration:

    direct     the upstream itself
    nginx      nginx as a plain reverse proxy (1 worker; apt-get install nginx if missing)
    floor      the bare pure-ASGI proxy on aiohttp's client (bench/floor_proxy.py):
               the Python floor
    gateway    `gatehouse run gateway`: valid token, RBAC, rate limiting (memory store),
               breaker, metrics
    gw+redis   the same with REDIS_URL (the Redis store)
    gw+otel    with ``--tracing``: the gateway with tracing on, exporting OTLP to a sink
               that keeps nothing (bench/otlp_sink.py); ``otel/off`` is what tracing costs

For each proxy it reports req/s, p50/p99 and the CPU time (user+system, /proc) of the
proxy process per request, and the gateway's ratios to the floor and to nginx. The
machine is shared: the targets are measured in interleaved rounds (``--rounds``, each
``--seconds`` long per target; ``--runs`` restarts every process) and the median of
the per-round ratios is reported; only ratios within one round are compared, never
absolute figures across rounds.

    .venv/bin/python bench/gateway_overhead.py [--rounds 5] [--runs 1] [--seconds 5] [--tracing]

``--profile FILE`` runs the gateway under cProfile for one run (figures then inflate).
Needs wrk and nginx (installed with apt-get when missing). Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
PASSWORD = "bench-password-1"
CONFIG = HERE / "gateway-bench.yaml"
NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    upstream static {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://static;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if shutil.which("nginx") is None and Path("/usr/sbin/nginx").exists():
        missing.remove("nginx")
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Processes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
        log = (self.folder / f"{name}.log").open("wb")
        full = {**os.environ, "LOG_LEVEL": "WARNING", "GATEHOUSE_DEMO_PASSWORD": PASSWORD}
        for variable in ("DATABASE_URL", "REDIS_URL", "AMQP_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            full.pop(variable, None)
        full.update(env or {})
        proc = subprocess.Popen(
            command, env=full, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        return proc.pid

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_http(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str | None, connections: int, seconds: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    result = {"rps": float(_find(r"Requests/sec:\s+([\d.]+)", out))}
    result["requests"] = float(_find(r"(\d+) requests in", out))
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        assert match is not None, out
        value, unit = match.groups()
        result[f"p{pct}_ms"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    return result


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, text
    return match.group(1)


def measure(
    url: str, pid: int | None, token: str | None, args: argparse.Namespace
) -> dict[str, float]:
    before = cpu_seconds(pid) if pid else 0.0
    result = wrk(url, token, args.connections, args.seconds)
    if pid:
        result["cpu_us"] = (cpu_seconds(pid) - before) / max(result["requests"], 1) * 1e6
    return result


def one_run(args: argparse.Namespace, folder: Path, run: int) -> list[dict[str, dict[str, float]]]:
    procs = Processes(folder)
    ports = {
        n: free_port()
        for n in (
            "upstream",
            "nginx",
            "floor",
            "auth",
            "gw",
            "gwr",
            "a1",
            "a2",
            "gwo",
            "a3",
            "otlp",
        )
    }
    try:
        py = sys.executable
        procs.start("upstream", [py, str(HERE / "static_upstream.py"), str(ports["upstream"])])
        upstream = f"http://127.0.0.1:{ports['upstream']}"
        floor_pid = procs.start(
            "floor", [py, str(HERE / "floor_proxy.py"), str(ports["floor"]), upstream]
        )
        conf = folder / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(dir=folder, upstream=ports["upstream"], port=ports["nginx"])
        )
        procs.start("nginx", [nginx_binary(), "-c", str(conf), "-g", "daemon off;"])
        auth_env = {"GATEHOUSE_AUTH_PORT": str(ports["auth"]), "GATEHOUSE_PROFILE": "embedded"}
        procs.start("auth", [GATEHOUSE, "run", "auth"], auth_env)
        auth = f"http://127.0.0.1:{ports['auth']}"
        wait_http(f"{auth}/readyz")
        gateway_env = {
            "GATEHOUSE_PROFILE": "embedded",
            "GATEHOUSE_GATEWAY_CONFIG": str(CONFIG),
            "GATEHOUSE_AUTH_PORT": str(ports["auth"]),
            "GATEHOUSE_UPSTREAM_AUTHORS_URL": upstream,
            "GATEHOUSE_UPSTREAM_REALTIME_URL": upstream,
            "GATEHOUSE_UPSTREAM_AUTH_URL": auth,
            "GATEHOUSE_RATE_LIMIT_STORE": "memory",
        }
        command = [GATEHOUSE, "run", "gateway"]
        if args.profile and run == 0:
            command = [py, "-m", "cProfile", "-o", str(Path(args.profile).resolve()), *command]
        gw_pid = procs.start(
            "gateway",
            command,
            {
                **gateway_env,
                "GATEHOUSE_GATEWAY_PORT": str(ports["gw"]),
                "GATEHOUSE_ADMIN_PORT": str(ports["a1"]),
            },
        )
        redis_env = {
            **gateway_env,
            "GATEHOUSE_GATEWAY_PORT": str(ports["gwr"]),
            "GATEHOUSE_ADMIN_PORT": str(ports["a2"]),
            "REDIS_URL": args.redis,
            "GATEHOUSE_RATE_LIMIT_STORE": "redis",
            "GATEHOUSE_RATE_LIMIT_PREFIX": f"bench:{os.getpid()}:{run}:",
        }
        gwr_pid = procs.start("gateway-redis", [GATEHOUSE, "run", "gateway"], redis_env)
        for port in (ports["upstream"], ports["floor"], ports["nginx"]):
            wait_http(f"http://127.0.0.1:{port}/v1/authors/bench")
        gwo_pid = _traced_gateway(procs, gateway_env, ports) if args.tracing else None
        for port in (ports["gw"], ports["gwr"], *([ports["gwo"]] if args.tracing else [])):
            wait_http(f"http://127.0.0.1:{port}/readyz")
        login = httpx.post(
            f"{auth}/auth/token", json={"username": "editor", "password": PASSWORD}, timeout=10
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        nginx_pid = (
            int((folder / "nginx.pid").read_text()) if (folder / "nginx.pid").exists() else 0
        )
        nginx_worker = _child_of(nginx_pid) or nginx_pid
        path = "/v1/authors/bench"
        targets = {
            "direct": (upstream + path, None, None),
            "nginx": (f"http://127.0.0.1:{ports['nginx']}{path}", nginx_worker, None),
            "floor": (f"http://127.0.0.1:{ports['floor']}{path}", floor_pid, None),
            "gateway": (f"http://127.0.0.1:{ports['gw']}/api{path}", gw_pid, token),
            "gw+redis": (f"http://127.0.0.1:{ports['gwr']}/api{path}", gwr_pid, token),
        }
        if gwo_pid is not None:
            targets["gw+otel"] = (f"http://127.0.0.1:{ports['gwo']}/api{path}", gwo_pid, token)
        for url, _, auth_token in targets.values():  # warm-up: pools, caches
            wrk(url, auth_token, args.connections, 2)
        # Rounds interleave the targets, so that load from elsewhere on a shared machine
        # falls on all of them alike; each round's ratios are kept.
        rounds = [
            {name: measure(*target, args) for name, target in targets.items()}
            for _ in range(args.rounds)
        ]
    finally:
        procs.stop()
    return rounds


def _traced_gateway(procs: Processes, gateway_env: dict[str, str], ports: dict[str, int]) -> int:
    """A gateway with tracing on, exporting to a sink of its own; its pid."""
    procs.start("otlp-sink", [sys.executable, str(HERE / "otlp_sink.py"), str(ports["otlp"])])
    traced = {
        **gateway_env,
        "GATEHOUSE_GATEWAY_PORT": str(ports["gwo"]),
        "GATEHOUSE_ADMIN_PORT": str(ports["a3"]),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['otlp']}",
    }
    return procs.start("gateway-otel", [GATEHOUSE, "run", "gateway"], traced)


def _child_of(pid: int) -> int | None:
    if not pid:
        return None
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def report(label: str, results: dict[str, dict[str, float]]) -> dict[str, float]:
    print(f"\n{label}")
    for name, r in results.items():
        cpu = f"{r['cpu_us']:7.0f} us/req" if "cpu_us" in r else " " * 14
        print(
            f"  {name:9} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
            f"p99 {r['p99_ms']:6.2f} ms  {cpu}  non-2xx {r['non_2xx']:.0f}"
        )
    ratios = {
        "gateway/floor": results["gateway"]["cpu_us"] / results["floor"]["cpu_us"],
        "gateway/nginx": results["gateway"]["cpu_us"] / results["nginx"]["cpu_us"],
        "floor/nginx": results["floor"]["cpu_us"] / results["nginx"]["cpu_us"],
        "redis/memory": results["gw+redis"]["cpu_us"] / results["gateway"]["cpu_us"],
        "gw+redis/floor": results["gw+redis"]["cpu_us"] / results["floor"]["cpu_us"],
    }
    if "gw+otel" in results:
        ratios["otel/off"] = results["gw+otel"]["cpu_us"] / results["gateway"]["cpu_us"]
    print("  " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh processes each run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--profile", metavar="FILE", help="cProfile the gateway in run 1")
    parser.add_argument("--tracing", action="store_true", help="also a gateway tracing on")
    args = parser.parse_args()
    ensure_tools()
    print(
        f"connections={args.connections} seconds={args.seconds} "
        f"runs={args.runs} rounds={args.rounds}"
    )
    all_ratios: list[dict[str, float]] = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            for i, results in enumerate(one_run(args, Path(tmp), run)):
                all_ratios.append(report(f"run {run + 1} round {i + 1}", results))
    medians: dict[str, Any] = {
        key: statistics.median(r[key] for r in all_ratios) for key in all_ratios[0]
    }
    print(
        f"\nmedian over {len(all_ratios)} rounds: "
        + "  ".join(f"{k} {v:.2f}x" for k, v in medians.items())
    )


if __name__ == "__main__":
    main()
