"""The clients of a chaos test: a steady writer, subscribers, a reader load.

Each records what it saw with monotonic timestamps, and nothing else: the
properties are computed afterwards from these records (:mod:`.ledger`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets


@dataclass(frozen=True)
class Outcome:
    """One HTTP request: when it was sent and answered, and how."""

    started: float
    ended: float
    gateway: str
    status: int | None  # None: no answer (connection error, timeout)
    detail: str
    name: str = ""
    resource_id: str | None = None
    retry_after: str | None = None

    @property
    def failed(self) -> bool:
        return self.status is None or not 200 <= self.status < 300


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _request(
    client: httpx.AsyncClient, gateway: str, method: str, path: str, **kwargs: Any
) -> Outcome:
    started = time.monotonic()
    try:
        response = await client.request(method, f"{gateway}{path}", **kwargs)
    except httpx.HTTPError as exc:
        return Outcome(started, time.monotonic(), gateway, None, repr(exc)[:200])
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    return Outcome(
        started,
        time.monotonic(),
        gateway,
        response.status_code,
        str(body.get("code") or body.get("detail") or "")[:200] if isinstance(body, dict) else "",
        resource_id=body.get("id") if isinstance(body, dict) else None,
        retry_after=response.headers.get("retry-after"),
    )


@dataclass
class Writer:
    """Creates authors at ``rate`` per second through the gateways in turn (no retries:
    each attempt has its own name, so the database can be checked attempt by attempt)."""

    gateways: list[str]
    token: str
    rate: float
    prefix: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    outcomes: list[Outcome] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        gateways = itertools.cycle(self.gateways)
        pending: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(headers=_bearer(self.token), timeout=10) as client:
            for number in itertools.count():
                if stop.is_set():
                    break
                task = asyncio.create_task(self._write(client, next(gateways), number))
                pending.add(task)
                task.add_done_callback(pending.discard)
                await _pause(stop, 1 / self.rate)
            await asyncio.gather(*pending)

    async def _write(self, client: httpx.AsyncClient, gateway: str, number: int) -> None:
        name = f"{self.prefix}-{number:05d}"
        body = {"name": name, "bio": "chaos"}
        outcome = await _request(client, gateway, "POST", "/api/v1/authors", json=body)
        self.outcomes.append(Outcome(**{**outcome.__dict__, "name": name}))

    def acknowledged(self) -> dict[str, Outcome]:
        """Writes answered 201, by author id."""
        return {o.resource_id: o for o in self.outcomes if o.status == 201 and o.resource_id}


@dataclass
class Reader:
    """GETs a page of authors at ``rate`` per second through the gateways in turn."""

    gateways: list[str]
    token: str
    rate: float
    outcomes: list[Outcome] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        gateways = itertools.cycle(self.gateways)
        pending: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(headers=_bearer(self.token), timeout=10) as client:
            while not stop.is_set():
                task = asyncio.create_task(self._read(client, next(gateways)))
                pending.add(task)
                task.add_done_callback(pending.discard)
                await _pause(stop, 1 / self.rate)
            await asyncio.gather(*pending)

    async def _read(self, client: httpx.AsyncClient, gateway: str) -> None:
        self.outcomes.append(await _request(client, gateway, "GET", "/api/v1/authors?per_page=1"))


@dataclass(frozen=True)
class Received:
    at: float
    connection: int
    channel: str
    event_id: str
    sequence: int
    type: str
    subject: str
    event: dict[str, Any]


@dataclass(frozen=True)
class Drop:
    at: float
    gateway: str
    reason: str


@dataclass
class Subscriber:
    """A client subscribed to ``authors`` on its gateway. When the socket drops it
    reconnects (its own gateway first, then the others) and resumes with ``since``,
    as DESIGN §6 has clients do; every resume's ``recovered`` is recorded."""

    name: str
    gateways: list[str]  # preferred first
    token: str
    channel: str = "authors"
    received: list[Received] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    resumes: list[tuple[float, Any]] = field(default_factory=list)
    subscribed_at: float | None = None  # first successful subscription
    connections: int = 0

    @property
    def last_sequence(self) -> int | None:
        return self.received[-1].sequence if self.received else None

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        gateways = itertools.cycle(self.gateways)
        gateway = next(gateways)
        while not stop.is_set():
            try:
                await self._session(gateway, stop, ready)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.drops.append(Drop(time.monotonic(), gateway, repr(exc)[:200]))
                gateway = next(gateways)  # the preferred one failed: try the next
                await _pause(stop, 0.2)

    async def _session(
        self, gateway: str, stop: asyncio.Event, ready: asyncio.Event | None
    ) -> None:
        url = gateway.replace("http://", "ws://", 1) + "/ws"
        async with websockets.connect(url, additional_headers=_bearer(self.token)) as ws:
            await self._subscribe(ws)
            if ready is not None:
                ready.set()
            stopping = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    receive = asyncio.ensure_future(ws.recv())
                    await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not receive.done():
                        receive.cancel()
                        return
                    self._on_frame(json.loads(receive.result()))
            finally:
                stopping.cancel()

    async def _subscribe(self, ws: websockets.ClientConnection) -> None:
        self.connections += 1
        request: dict[str, Any] = {"id": "sub", "op": "subscribe", "channel": self.channel}
        resuming = self.last_sequence is not None
        if resuming:
            request["since"] = self.last_sequence
        await ws.send(json.dumps(request))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply.get("id") == "sub":
                break
            self._on_frame(reply)
        if not reply.get("ok"):
            raise websockets.InvalidState(f"subscribe refused: {reply}")
        if resuming:
            self.resumes.append((time.monotonic(), reply["result"].get("recovered")))
        elif self.subscribed_at is None:
            self.subscribed_at = time.monotonic()

    def _on_frame(self, frame: dict[str, Any]) -> None:
        if frame.get("type") != "event":
            return
        event = frame["event"]
        self.received.append(
            Received(
                time.monotonic(),
                self.connections,
                frame["channel"],
                event["id"],
                int(event.get("sequence") or 0),
                event["type"],
                str(event.get("subject")),
                event,
            )
        )


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
