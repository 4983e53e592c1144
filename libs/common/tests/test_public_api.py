"""The public API of the kit is pinned: adding or removing a name is a deliberate change
(as httpx pins its exports), and importing the kit loads no framework the gateway lacks."""

from __future__ import annotations

import inspect
import subprocess
import sys

import gatehouse.common as kit

EXPORTED = [
    "BadRequest",
    "BusSettings",
    "Check",
    "CloudEvent",
    "CommonSettings",
    "ConfigurationError",
    "Conflict",
    "EXCHANGE",
    "EventBus",
    "Forbidden",
    "GatehouseError",
    "Handler",
    "HeadersTooLarge",
    "Health",
    "InMemoryEventBus",
    "JWTVerifier",
    "MEMORY_URL",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionRequired",
    "Principal",
    "Profile",
    "RequestTimeout",
    "RpcHandler",
    "RpcTimeout",
    "RpcUnavailable",
    "ServiceMiddleware",
    "ServiceUnavailable",
    "Subscription",
    "TooManyRequests",
    "TrustedPeers",
    "Unauthorized",
    "UnsafeForProduction",
    "UnsupportedMediaType",
    "UpgradeRequired",
    "UpstreamError",
    "UpstreamTimeout",
    "UriTooLong",
    "ValidationFailed",
    "bearer_token",
    "bus_check",
    "bus_from_url",
    "current_request",
    "encode_problem",
    "error_envelope",
    "health_router",
    "install_problem_handlers",
    "jwks_check",
    "mask_url",
    "note_user",
    "problem_body",
    "rpc_routing_key",
    "send_problem",
    "setup_logging",
    "subscription_check",
    "topic_matches",
]


UNDOCUMENTED: set[str] = set()


def test_the_exported_names_are_pinned() -> None:
    assert kit.__all__ == sorted(EXPORTED)


def test_every_exported_class_and_function_is_the_kits_own() -> None:
    for name in kit.__all__:
        value = getattr(kit, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__.startswith("gatehouse.common."), (name, value.__module__)
            assert value.__doc__ or name in UNDOCUMENTED, f"{name} has no docstring"


def test_importing_the_kit_and_its_asgi_parts_loads_no_web_framework() -> None:
    code = (
        "import sys, gatehouse.common as k;"
        "from gatehouse.common import ServiceMiddleware, Health, send_problem, JWTVerifier;"
        "print(sorted(m for m in ('fastapi', 'starlette', 'sqlalchemy') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
