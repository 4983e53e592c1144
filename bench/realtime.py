"""Realtime through the gateway: memory per idle WebSocket and event delivery (DESIGN §11).

Starts `gatehouse run auth`, `gatehouse run realtime` (on RabbitMQ, an exchange of its
own) and `gatehouse run gateway` as separate processes, then opens N WebSockets
through the gateway, each authenticated and subscribed to `authors`, and measures:

    memory    RSS growth per idle connection, of realtime and of the gateway separately
              (connections held idle until the RSS of both settles)
    fan-out   one event published on the broker -> received by all N clients:
              p50/p99/max over the clients, per event (several events, median reported)
    steady    events at a steady rate on `books`, to a few extra subscribers, while the
              N idle ones stay connected: publish -> client p50/p99

The clients are a minimal WebSocket client on asyncio's Protocol (handshake, masked
client frames, unmasked server frames), so that 10,000 of them fit in this process;
they run on the same 2 cores as the services (DESIGN §11: "with the clients on it").
The file limit is raised for this process and the services as far as allowed; a
proxied socket costs a gateway two descriptors, so when the limit is below twice N
the clients are spread over enough gateway processes (DESIGN's split mode runs two),
and the gateway's memory is their sum. Loopback only, bounded in time; the broker's
exchange and stream are removed.

    .venv/bin/python bench/realtime.py --clients 10000 [--events 5] [--rate 500] [--storm]

    storm     (--storm) every socket dropped, then all N reconnect at once: how long until
              all are subscribed again, and what refused them meanwhile (retried after 1 s)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml

from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.events import CloudEvent

HERE = Path(__file__).parent
ROOT = HERE.parent
GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
PASSWORD = "bench-password-1"
AMQP_URL = os.environ.get("GATEHOUSE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
FILES = 65536


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_file_limit() -> int:
    """Raise the file limit (inherited by the services) as far as allowed; the limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # raising the hard limit needs CAP_SYS_RESOURCE
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(FILES, hard), max(FILES, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(f"file limit: {limit}", flush=True)
    return limit


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Client(asyncio.Protocol):
    """A minimal WebSocket client: enough to subscribe and timestamp pushed frames."""

    def __init__(self, host: str, token: str, on_text: Callable[[Client, str, float], None]):
        self.host, self.token, self.on_text = host, token, on_text
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed: int | None = None
        # Set while a reply is awaited: a close fails it with the code and reason, so a
        # refused socket says why instead of timing out.
        self.waiting: asyncio.Future[dict[str, Any]] | None = None
        self._buffer = bytearray()
        self._handshaken = False
        self.failure: str | None = None  # why it ended, when nothing was waiting to hear it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {self.token}\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._buffer += data
        if not self._handshaken:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._handshaken = True
            if not self.upgraded.done():
                if head.startswith(b"HTTP/1.1 101"):
                    self.upgraded.set_result(None)
                else:
                    self.upgraded.set_exception(RuntimeError(head[:200].decode(errors="replace")))
        self._frames(now)

    def _frames(self, now: float) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            opcode, length, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, start = struct.unpack("!H", buf[2:4])[0], 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, start = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start : start + length])
            del buf[: start + length]
            if opcode == 1:
                self.on_text(self, payload.decode(), now)
            elif opcode == 9:
                self._send(0xA, payload)
            elif opcode == 8:
                self.closed = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._fail(f"closed {self.closed} {payload[2:].decode(errors='replace')!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        phase = "after" if self._handshaken else "before"
        self._fail(f"connection lost ({exc or 'EOF'}) {phase} the handshake")

    def _fail(self, why: str) -> None:
        told = False
        for waiter in (self.upgraded, self.waiting):
            if waiter is not None and not waiter.done():
                waiter.set_exception(RuntimeError(why))
                told = True
        if not told and self.failure is None:  # e.g. a close in the same read as the 101
            self.failure = why

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(header + mask + masked)


def event_id(text: str) -> str:
    """The event id of a pushed frame, without parsing the JSON (10,000 of them per event)."""
    return text.split('"id":"', 2)[1].split('"', 1)[0]


def book_title(text: str) -> str:
    return str(json.loads(text)["event"]["data"]["title"])


RETRIES = 5


class Crowd:
    """N clients and what they received: replies by id, event arrival times by ``key``
    (the event id unless told otherwise)."""

    def __init__(self, key: Callable[[str], str] = event_id) -> None:
        self.clients: list[Client] = []
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.arrivals: dict[str, list[float]] = {}
        self.refused: dict[str, int] = {}
        self.key = key
        self.retries = RETRIES

    def on_text(self, client: Client, text: str, now: float) -> None:
        if text.startswith('{"type":"event"'):
            self.arrivals.setdefault(self.key(text), []).append(now)
            return
        message = json.loads(text)
        waiter = self.replies.pop(str(message.get("id")), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)

    async def open(
        self, count: int, ports: list[int], token: str, channel: str, batch: int = 100
    ) -> None:
        loop = asyncio.get_running_loop()
        for start in range(0, count, batch):
            size = min(batch, count - start)
            await asyncio.gather(
                *(
                    self._one(loop, ports[(start + n) % len(ports)], token, channel)
                    for n in range(size)
                )
            )
            if (start + size) % 2000 == 0 or start + size == count:
                refused = f" (refused and retried: {self.refused})" if self.refused else ""
                print(f"  {len(self.clients)} clients subscribed to {channel}{refused}", flush=True)

    async def _one(self, loop: asyncio.AbstractEventLoop, port: int, token: str, ch: str) -> None:
        """One subscribed client; a refused one (closed, or no answer) is counted by its
        reason and retried after a second, as a real client would, up to RETRIES times."""
        for attempt in range(self.retries + 1):
            try:
                await self._try(loop, port, token, ch)
                return
            except (TimeoutError, RuntimeError, OSError) as exc:
                reason = str(exc)[:120] or type(exc).__name__
                self.refused[reason] = self.refused.get(reason, 0) + 1
                if attempt == self.retries:
                    raise RuntimeError(
                        f"subscribe #{len(self.clients) + 1} via {port}: {reason}; "
                        f"refusals so far: {self.refused}"
                    ) from None
                await asyncio.sleep(1)

    async def _try(self, loop: asyncio.AbstractEventLoop, port: int, token: str, ch: str) -> None:
        host = f"127.0.0.1:{port}"
        _, client = await loop.create_connection(
            lambda: Client(host, token, self.on_text), "127.0.0.1", port
        )
        try:
            await asyncio.wait_for(client.upgraded, 30)
            if client.failure is not None:
                raise RuntimeError(client.failure)
            rid = uuid.uuid4().hex
            self.replies[rid] = client.waiting = loop.create_future()
            client.send_text(json.dumps({"id": rid, "op": "subscribe", "channel": ch}))
            reply = await asyncio.wait_for(self.replies[rid], 30)
        except BaseException:
            assert client.transport is not None
            client.transport.abort()
            raise
        client.waiting = None
        if not reply.get("ok"):
            raise RuntimeError(f"subscribe refused: {reply}")
        self.clients.append(client)

    def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    if not ordered:
        return float("nan"), float("nan"), float("nan")
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.5), pick(0.99), ordered[-1]


class Stack:
    """auth, realtime and the gateways as processes; stopped with SIGTERM at the end."""

    def __init__(
        self, folder: Path, exchange: str, gateways: int, database: str | None = None
    ) -> None:
        self.folder, self.exchange, self.database = folder, exchange, database
        self.gateways = [f"gateway-{n}" for n in range(1, gateways + 1)]
        self.services = ["auth", *(["authors"] if database else []), "realtime"]
        names = [*self.services, *self.gateways, *(f"admin-{g}" for g in self.gateways)]
        self.ports = {name: free_port() for name in names}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def env(self, gateway: str = "gateway-1") -> dict[str, str]:
        issuer = f"http://127.0.0.1:{self.ports['auth']}/realms/gatehouse"
        return {
            **os.environ,
            "GATEHOUSE_PROFILE": "embedded",
            "GATEHOUSE_LOG_JSON": "0",
            "GATEHOUSE_ACCESS_LOG": "false",
            "LOG_LEVEL": "WARNING",
            "GATEHOUSE_DATA_DIR": str(self.folder / "data"),
            "GATEHOUSE_DEMO_PASSWORD": PASSWORD,
            "OIDC_ISSUER": issuer,
            "AMQP_URL": AMQP_URL,
            "GATEHOUSE_AMQP_EXCHANGE": self.exchange,
            "GATEHOUSE_AUTH_PORT": str(self.ports["auth"]),
            "GATEHOUSE_REALTIME_PORT": str(self.ports["realtime"]),
            "GATEHOUSE_GATEWAY_PORT": str(self.ports[gateway]),
            "GATEHOUSE_ADMIN_PORT": str(self.ports[f"admin-{gateway}"]),
            "GATEHOUSE_GATEWAY_CONFIG": str(self._gateway_config()),
            "GATEHOUSE_UPSTREAM_AUTH_URL": f"http://127.0.0.1:{self.ports['auth']}",
            "GATEHOUSE_UPSTREAM_REALTIME_URL": f"http://127.0.0.1:{self.ports['realtime']}",
            "GATEHOUSE_UPSTREAM_AUTHORS_URL": f"http://127.0.0.1:{self.ports.get('authors', 9)}",
            "GATEHOUSE_RATE_LIMIT_STORE": "memory",
            **(
                {
                    "DATABASE_URL": self.database,
                    "GATEHOUSE_AUTHORS_PORT": str(self.ports["authors"]),
                }
                if self.database
                else {}
            ),
        }

    def _gateway_config(self) -> Path:
        shipped = ROOT / "gateway/src/gatehouse/gateway/gateway.yaml"
        config = yaml.safe_load(shipped.read_text())
        config.setdefault("websockets", {})["max_per_user"] = 1_000_000
        config["rate_limits"]["default"] = {"limit": 100_000_000, "window": 60}
        path = self.folder / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> None:
        if self.database:  # production never migrates itself; neither does the bench
            subprocess.run(
                [GATEHOUSE, "migrate", "authors"], env=self.env(), check=True, capture_output=True
            )
        for name in (*self.services, *self.gateways):
            log = (self.folder / f"{name}.log").open("wb")
            mode = "gateway" if name.startswith("gateway") else name
            self.processes[name] = subprocess.Popen(
                [GATEHOUSE, "run", mode],
                env=self.env(name if mode == "gateway" else "gateway-1"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.wait_ready(name)

    def wait_ready(self, name: str) -> None:
        port = self.ports[f"admin-{name}" if name.startswith("gateway") else name]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log(name)}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready:\n{self.log(name)}")

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def settle_rss(pids: dict[str, int], seconds: float = 3.0) -> dict[str, int]:
    """RSS once it stops moving (or after a while), in KiB."""
    last = {name: rss_kib(pid) for name, pid in pids.items()}
    for _ in range(10):
        await asyncio.sleep(seconds)
        now = {name: rss_kib(pid) for name, pid in pids.items()}
        if all(abs(now[n] - last[n]) < 256 for n in now):
            return now
        last = now
    return last


def token_of(gateway: int, username: str = "viewer") -> str:
    response = httpx.post(
        f"http://127.0.0.1:{gateway}/auth/token",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def event(kind: str, sequence: int) -> CloudEvent:
    subject = str(uuid.uuid4())
    return CloudEvent(
        source="/gatehouse/authors",
        type=f"gatehouse.{kind}.updated",
        subject=subject,
        data={"id": subject, "author_id": subject, "n": sequence, "pad": "x" * 300},
        sequence=sequence,
    )


def cpu_ms(pid: int) -> float:
    """CPU time of a process's threads so far (ms), from /proc: schedstat's nanoseconds
    where the kernel keeps them (stat's clock ticks are 10 ms, a third of an event)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    except (FileNotFoundError, ValueError):
        total = 0
    if total:
        return total / 1e6
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def fan_out(
    bus: AmqpEventBus, crowd: Crowd, count: int, sequence: int, pids: dict[str, int]
) -> list[float]:
    """Publish events one at a time; each one's p99 delivery to all subscribers (ms), and
    the CPU each process spent until the last client had it (where the time goes)."""
    p99s = []
    pids = {**pids, "bench clients": os.getpid()}
    for n in range(count):
        published = event("author", sequence + n)
        cpu = {name: cpu_ms(pid) for name, pid in pids.items()}
        start = time.perf_counter()
        await bus.publish(published)
        deadline = time.monotonic() + 30
        while len(crowd.arrivals.get(published.id, ())) < len(crowd.clients):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        spent = {name: f"{cpu_ms(pid) - cpu[name]:.0f}" for name, pid in pids.items()}
        arrivals = crowd.arrivals.pop(published.id, [])
        delays = [(t - start) * 1000 for t in arrivals]
        p50, p99, worst = percentiles(delays)
        lost = len(crowd.clients) - len(delays)
        print(
            f"  event {n + 1}: {len(delays)} clients, p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
            f"max {worst:.0f} ms, missing {lost}; CPU ms meanwhile {spent}, "
            f"load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        p99s.append(p99)
        await asyncio.sleep(1)
    return p99s


async def steady(bus: AmqpEventBus, crowd: Crowd, rate: float, seconds: float, seq: int) -> None:
    sent: dict[str, float] = {}
    interval, total = 1 / rate, int(rate * seconds)
    begin = time.perf_counter()
    for n in range(total):
        await asyncio.sleep(max(0.0, begin + n * interval - time.perf_counter()))
        published = event("book", seq + n)
        sent[published.id] = time.perf_counter()
        await bus.publish(published)
    await asyncio.sleep(2)
    delays = [
        (t - sent[eid]) * 1000
        for eid, times in crowd.arrivals.items()
        if eid in sent
        for t in times
    ]
    achieved = total / (time.perf_counter() - begin - 2)
    p50, p99, worst = percentiles(delays)
    print(
        f"steady: {total} events at {rate:g}/s (sent at {achieved:.0f}/s), "
        f"{len(delays)} deliveries to {len(crowd.clients)} clients: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms",
        flush=True,
    )


async def writes(stack: Stack, few: Crowd, rate: float, seconds: float) -> None:
    """Books created through the gateway at ``rate``/s (authors on PostgreSQL, its relay,
    RabbitMQ, realtime): POST sent -> the event on each `books` subscriber."""
    import aiohttp

    gateway = f"http://127.0.0.1:{stack.ports[stack.gateways[0]]}"
    headers = {"Authorization": f"Bearer {token_of(stack.ports[stack.gateways[0]], 'editor')}"}
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(gateway, connector=connector, headers=headers) as http:
        async with http.post("/api/v1/authors", json={"name": "Bench Author"}) as created:
            author = (await created.json())["id"]
        sent: dict[str, float] = {}
        answered: list[float] = []
        statuses: dict[int, int] = {}

        async def write(n: int) -> None:
            title = f"bench-{n}"
            sent[title] = start = time.perf_counter()
            body = {"author_id": author, "title": title, "year": 1999}
            async with http.post("/api/v1/books", json=body) as response:
                await response.read()
            answered.append((time.perf_counter() - start) * 1000)
            statuses[response.status] = statuses.get(response.status, 0) + 1

        total, begin = int(rate * seconds), time.perf_counter()
        tasks = []
        for n in range(total):
            await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(write(n)))
        achieved = total / (time.perf_counter() - begin)
        await asyncio.gather(*tasks)
        await asyncio.sleep(3)
    delays = [(t - sent[k]) * 1000 for k, times in few.arrivals.items() if k in sent for t in times]
    missing = total * len(few.clients) - len(delays)
    p50, p99, worst = percentiles(delays)
    h50, h99, _ = percentiles(answered)
    print(
        f"writes: {total} books at {rate:g}/s (sent at {achieved:.0f}/s), statuses {statuses}, "
        f"POST p50 {h50:.1f} ms p99 {h99:.1f} ms; write -> event on {len(few.clients)} "
        f"`books` subscribers: {len(delays)} deliveries, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {worst:.1f} ms, missing {missing}",
        flush=True,
    )
    if missing:
        print(f"authors log:\n{stack.log('authors')}\nrealtime log:\n{stack.log('realtime')}")


# Sequences of the events the bench publishes itself, far above the relay's: realtime
# drops an event at or below its channel's last sequence (exactly-once delivery).
SYNTHETIC = 1_000_000


async def run(args: argparse.Namespace, stack: Stack) -> None:
    pids = {name: stack.pid(name) for name in ("realtime", *stack.gateways)}
    ports = [stack.ports[g] for g in stack.gateways]
    token = token_of(ports[0])
    if args.direct:  # realtime alone: its CPU per event without the gateway's
        ports = [stack.ports["realtime"]]
    warm = Crowd()
    await warm.open(50 * len(ports), ports, token, "authors")  # code paths, pools
    warm.close()
    before = await settle_rss(pids)
    crowd = Crowd()
    started = time.perf_counter()
    await crowd.open(args.clients, ports, token, "authors")
    print(f"opened {args.clients} in {time.perf_counter() - started:.1f} s", flush=True)
    after = await settle_rss(pids)
    realtime = (after["realtime"] - before["realtime"]) / args.clients
    gateway = sum(after[g] - before[g] for g in stack.gateways) / args.clients
    print(
        f"memory per idle connection: realtime {realtime:.1f} KiB, gateway {gateway:.1f} KiB "
        f"({len(ports)} process(es)), together {realtime + gateway:.1f} KiB "
        f"(RSS KiB before/after: {before} / {after})",
        flush=True,
    )
    if args.writes > 0:  # first: the relay's sequences start at 1 (see SYNTHETIC)
        writers = Crowd(key=book_title)
        await writers.open(args.subscribers, ports, token, "books")
        await writes(stack, writers, args.writes, args.seconds)
        writers.close()
    bus = AmqpEventBus(AMQP_URL, exchange=stack.exchange)
    await bus.start()
    try:
        p99s = await fan_out(bus, crowd, args.events, SYNTHETIC, pids)
        print(
            f"fan-out to {len(crowd.clients)}: median p99 {statistics.median(p99s):.0f} ms "
            f"over {len(p99s)} events",
            flush=True,
        )
        if args.storm:
            await storm(stack, crowd, args.clients, ports, token)
        if args.rate > 0:
            few = Crowd()
            await few.open(args.subscribers, ports, token, "books")
            await steady(bus, few, args.rate, args.seconds, SYNTHETIC + 1000)
            few.close()
    finally:
        await bus.close()
        crowd.close()


async def storm(stack: Stack, crowd: Crowd, count: int, ports: list[int], token: str) -> None:
    """A replica's clients all at once: every socket dropped, then all reconnect together
    (what a drained or killed realtime replica's clients do, onto the rest)."""
    crowd.close()
    crowd.clients.clear()
    started = time.perf_counter()
    gauges = {f"http://127.0.0.1:{stack.ports['realtime']}/metrics": REALTIME_GAUGE}
    for gateway in stack.gateways:
        gauges[f"http://127.0.0.1:{stack.ports['admin-' + gateway]}/metrics"] = GATEWAY_GAUGE
    async with httpx.AsyncClient() as http:
        while time.perf_counter() - started < 60:
            still = [gauge_value((await http.get(url)).text, name) for url, name in gauges.items()]
            if not any(still):
                break
            await asyncio.sleep(0.5)
    took = time.perf_counter() - started
    print(f"storm: the dropped sockets were closed everywhere after {took:.1f} s", flush=True)
    again = Crowd()
    again.retries = 30
    started = time.perf_counter()
    await again.open(count, ports, token, "authors", batch=count)
    took = time.perf_counter() - started
    refused = sum(again.refused.values())
    print(
        f"storm: {len(again.clients)} of {count} reconnected at once in {took:.1f} s, "
        f"{refused} refusals retried after 1 s: {again.refused or 'none'}",
        flush=True,
    )
    again.close()


GATEWAY_GAUGE = "gatehouse_gateway_websocket_connections"
REALTIME_GAUGE = "gatehouse_realtime_connections"


def gauge_value(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def cleanup(exchange: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(f"{exchange}.stream")
        await channel.exchange_delete(exchange)
        await channel.exchange_delete(exchange.removesuffix(".events") + ".rpc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--rate", type=float, default=500, help="steady phase, events/s (0: skip)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--storm", action="store_true", help="then drop every socket and reconnect all at once"
    )
    parser.add_argument("--logs", type=Path, help="keep the services' logs in this new folder")
    parser.add_argument("--subscribers", type=int, default=10, help="of the steady phase")
    parser.add_argument(
        "--gateways",
        type=int,
        default=0,
        help="gateway processes (default: as the file limit needs)",
    )
    parser.add_argument(
        "--writes",
        type=float,
        default=0,
        help="books created through the gateway per second, write -> client (0: skip; "
        "starts authors on a fresh PostgreSQL database)",
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        help="clients connect to realtime itself, not through the gateway",
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    limit = raise_file_limit()
    # A proxied socket costs a gateway two descriptors (client and upstream).
    gateways = args.gateways or max(1, -(-(2 * args.clients + 500) // limit))
    exchange = f"bench-{uuid.uuid4().hex[:8]}.events"
    database = create_database(args.postgres) if args.writes > 0 else None
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder), exchange, gateways, database)
        try:
            stack.start()
            asyncio.run(run(args, stack))
        finally:
            stack.stop()
            if args.logs:
                shutil.copytree(folder, args.logs, ignore=shutil.ignore_patterns("data"))
            asyncio.run(cleanup(exchange))
            if database:
                drop_database(args.postgres, database)


def create_database(server: str) -> str:
    """A fresh database on ``server`` for the authors service; its URL."""
    name = f"gh_bench_rt_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(server, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def drop_database(server: str, database: str) -> None:
    name = urlsplit(database).path.lstrip("/")
    asyncio.run(_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _sql(server: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(server)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


if __name__ == "__main__":
    main()
