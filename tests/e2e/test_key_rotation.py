"""Signing keys rotate under load without a failed request.

Two auth replicas (the embedded issuer, production profile) share the real PostgreSQL
auth database; one gateway verifies tokens with the JWKS of the first replica and
sends ``/auth/*`` to both. Clients log in at either replica and call ``/auth/me``
through the gateway (verified by the gateway, then by a replica) with the new token
and with one a few seconds old, while keys rotate twice (``POST
/auth/admin/keys/rotate`` on the second replica, then ``gatehouse auth rotate-keys``).
Property: no request fails; tokens of three keys were seen; after each activation
both replicas sign with the new key within seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from .conftest import DEMO_PASSWORD, Processes, free_port, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.services]

POLL = 0.5  # GATEHOUSE_AUTH_KEY_POLL_SECONDS
# Seconds between a rotation and its key signing: above the poll + the verifier's 10 s
# floor between JWKS reloads (with 3 s, a gateway that had just loaded the JWKS at start
# refused tokens of the new key: "unknown signing key").
ACTIVATE_IN = 12.0
ROTATION_GAP = 25.0
WORKERS = 3
USERS = ("viewer", "editor", "auditor")
GATEWAY_CONFIG = Path(__file__).parents[2] / "gateway/src/gatehouse/gateway/gateway.yaml"


@dataclass
class Load:
    """What the clients saw: requests, failures, and which key signed what, when."""

    requests: int = 0
    failures: list[str] = field(default_factory=list)
    signed: list[tuple[float, str, str]] = field(default_factory=list)  # (time, replica, kid)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def unlimited_gateway_config(folder: Path) -> Path:
    """The packaged route table with rate limits no test client reaches."""
    config = yaml.safe_load(GATEWAY_CONFIG.read_text())
    config["rate_limits"] = {
        name: {"limit": 1_000_000, "window": 60} for name in config["rate_limits"]
    }
    config["login"] |= {
        "per_username": {"limit": 1_000_000, "window": 60},
        "per_ip": {"limit": 1_000_000, "window": 60},
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def client_loop(load: Load, replicas: list[str], gateway: str, worker: int) -> None:
    previous: str | None = None
    # One user per worker: concurrent logins of one username from one address contend on
    # the shared failed-login counters (auth-core's throttle), which is not under test here.
    user = USERS[worker % len(USERS)]
    async with httpx.AsyncClient(timeout=20) as http:
        turn = worker
        while not load.stop.is_set():
            replica = replicas[turn % len(replicas)]
            turn += 1
            login = await http.post(
                f"{replica}/auth/token", json={"username": user, "password": DEMO_PASSWORD}
            )
            load.requests += 1
            if login.status_code != 200:
                load.failures.append(f"login at {replica}: {login.status_code} {login.text}")
                continue
            token = login.json()["access_token"]
            load.signed.append((time.time(), replica, kid_of(token)))
            for bearer in filter(None, (token, previous)):
                me = await http.get(
                    f"{gateway}/auth/me", headers={"Authorization": f"Bearer {bearer}"}
                )
                load.requests += 1
                if me.status_code != 200 or me.json()["username"] != user:
                    load.failures.append(f"me ({kid_of(bearer)}): {me.status_code} {me.text}")
            previous = token


async def rotate_by_admin(replica: str) -> None:
    async with httpx.AsyncClient(base_url=replica, timeout=20) as http:
        login = await http.post(
            "/auth/token", json={"username": "admin", "password": DEMO_PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        rotated = await http.post(
            "/auth/admin/keys/rotate", json={"activate_in": ACTIVATE_IN}, headers=bearer
        )
    assert rotated.status_code == 201, rotated.text


async def test_keys_rotate_twice_under_load_without_a_failed_request(
    postgres_url: str, processes: Processes, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"
    replicas = [f"http://127.0.0.1:{port}" for port in ports]
    auth_env: dict[str, str | None] = {
        "GATEHOUSE_PROFILE": None,  # production, as `gatehouse run auth` defaults to
        "GATEHOUSE_AUTH_DATABASE_URL": postgres_url,
        "GATEHOUSE_AUTH_EMBEDDED_ISSUER": "true",
        "GATEHOUSE_AUTH_KEY_PASSPHRASE": "an e2e passphrase of the signing keys",
        "GATEHOUSE_AUTH_PUBLIC_URL": public,  # one issuer, whichever replica signs
        "GATEHOUSE_DEMO_PASSWORD": DEMO_PASSWORD,
        "GATEHOUSE_AUTH_ACCESS_TTL": "30",
        "GATEHOUSE_AUTH_KEY_POLL_SECONDS": str(POLL),
        "GATEHOUSE_DATA_DIR": ".data",
    }
    processes.run(["migrate", "auth"], auth_env)
    for index, port in enumerate(ports, 1):
        processes.start(
            f"auth-{index}", ["run", "auth"], {**auth_env, "GATEHOUSE_AUTH_PORT": str(port)}
        )
    gateway_port, unused = free_port(), free_port()
    gateway = f"http://127.0.0.1:{gateway_port}"
    processes.start(
        "gateway",
        ["run", "gateway"],
        {
            "GATEHOUSE_PROFILE": None,
            "OIDC_ISSUER": f"{public}/realms/gatehouse",
            "GATEHOUSE_RATE_LIMIT_STORE": "memory",
            "GATEHOUSE_GATEWAY_CONFIG": str(unlimited_gateway_config(tmp_path)),
            "GATEHOUSE_GATEWAY_PORT": str(gateway_port),
            "GATEHOUSE_ADMIN_PORT": str(free_port()),
            "GATEHOUSE_UPSTREAM_AUTH_URL": ",".join(replicas),
            "GATEHOUSE_UPSTREAM_AUTHORS_URL": f"http://127.0.0.1:{unused}",
            "GATEHOUSE_UPSTREAM_REALTIME_URL": f"http://127.0.0.1:{unused}",
        },
    )
    for server in [*replicas, gateway]:
        await wait_ready(processes, f"{server}/readyz")

    load = Load()
    clients = [asyncio.create_task(client_loop(load, replicas, gateway, n)) for n in range(WORKERS)]
    activations = []
    try:
        await asyncio.sleep(3)
        # Once by an admin on the second replica, once by an operator with the CLI.
        await rotate_by_admin(replicas[1])
        activations.append(time.time() + ACTIVATE_IN)  # at the latest
        await asyncio.sleep(ROTATION_GAP)
        rotate = ["auth", "rotate-keys", "--activate-in", str(ACTIVATE_IN)]
        await asyncio.to_thread(processes.run, rotate, auth_env)
        activations.append(time.time() + ACTIVATE_IN)
        await asyncio.sleep(ROTATION_GAP)
    finally:
        load.stop.set()
        await asyncio.gather(*clients)
    processes.assert_alive()

    assert load.failures == [], f"{len(load.failures)} of {load.requests}: {load.failures[:5]}"
    kids = list(dict.fromkeys(kid for _, _, kid in load.signed))
    assert len(kids) == 3, kids  # the first key, then one per rotation
    for activation, kid in zip(activations, kids[1:], strict=True):
        # From a moment after the activation until the next rotation could activate.
        settled = [
            (replica, signed_kid)
            for at, replica, signed_kid in load.signed
            if activation + 2 < at < activation - ACTIVATE_IN + ROTATION_GAP
        ]
        assert {replica for replica, _ in settled} == set(replicas)
        assert {signed_kid for _, signed_kid in settled} == {kid}
    assert load.requests > 50
