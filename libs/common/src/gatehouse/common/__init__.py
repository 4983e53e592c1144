"""The service kit every Gatehouse service is built from.

The public API is the names below; import them from ``gatehouse.common``. Each
lives in a module of its own and is imported on first use, so that the gateway,
which never needs FastAPI or SQLAlchemy, does not load them by importing the kit.
Database plumbing (SQLAlchemy, Alembic) is in :mod:`gatehouse.common.sql`, for
services that install ``gatehouse-common[sql]``.
"""

# One aliased import block per module reads better than a statement per name:
# isort: skip_file
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time __getattr__ imports on first use
    from gatehouse.common.bus import (
        MEMORY_URL as MEMORY_URL,
        bus_from_url as bus_from_url,
    )
    from gatehouse.common.errors import (
        BadRequest as BadRequest,
        ConfigurationError as ConfigurationError,
        Conflict as Conflict,
        Forbidden as Forbidden,
        GatehouseError as GatehouseError,
        HeadersTooLarge as HeadersTooLarge,
        MethodNotAllowed as MethodNotAllowed,
        NotFound as NotFound,
        PayloadTooLarge as PayloadTooLarge,
        PreconditionRequired as PreconditionRequired,
        RequestTimeout as RequestTimeout,
        RpcTimeout as RpcTimeout,
        RpcUnavailable as RpcUnavailable,
        ServiceUnavailable as ServiceUnavailable,
        TooManyRequests as TooManyRequests,
        Unauthorized as Unauthorized,
        UnsafeForProduction as UnsafeForProduction,
        UnsupportedMediaType as UnsupportedMediaType,
        UpgradeRequired as UpgradeRequired,
        UpstreamError as UpstreamError,
        UpstreamTimeout as UpstreamTimeout,
        UriTooLong as UriTooLong,
        ValidationFailed as ValidationFailed,
    )
    from gatehouse.common.events import (
        EXCHANGE as EXCHANGE,
        CloudEvent as CloudEvent,
        EventBus as EventBus,
        Handler as Handler,
        RpcHandler as RpcHandler,
        Subscription as Subscription,
        topic_matches as topic_matches,
    )
    from gatehouse.common.health import (
        Check as Check,
        Health as Health,
        bus_check as bus_check,
        health_router as health_router,
        jwks_check as jwks_check,
        subscription_check as subscription_check,
    )
    from gatehouse.common.identity import (
        Principal as Principal,
    )
    from gatehouse.common.logging import (
        setup_logging as setup_logging,
    )
    from gatehouse.common.memory_bus import (
        InMemoryEventBus as InMemoryEventBus,
    )
    from gatehouse.common.middleware import (
        ServiceMiddleware as ServiceMiddleware,
    )
    from gatehouse.common.problem import (
        encode_problem as encode_problem,
        error_envelope as error_envelope,
        problem_body as problem_body,
        send_problem as send_problem,
    )
    from gatehouse.common.problem_handlers import (
        install_problem_handlers as install_problem_handlers,
    )
    from gatehouse.common.requests import (
        TrustedPeers as TrustedPeers,
        current_request as current_request,
        note_user as note_user,
    )
    from gatehouse.common.rpc import (
        rpc_routing_key as rpc_routing_key,
    )
    from gatehouse.common.settings import (
        BusSettings as BusSettings,
        CommonSettings as CommonSettings,
        Profile as Profile,
        mask_url as mask_url,
    )
    from gatehouse.common.tokens import (
        JWTVerifier as JWTVerifier,
        bearer_token as bearer_token,
    )

# name -> the module that defines it
_HOMES = {
    **dict.fromkeys(("MEMORY_URL", "bus_from_url"), "bus"),
    **dict.fromkeys(
        (
            "BadRequest",
            "ConfigurationError",
            "Conflict",
            "Forbidden",
            "GatehouseError",
            "HeadersTooLarge",
            "MethodNotAllowed",
            "NotFound",
            "PayloadTooLarge",
            "PreconditionRequired",
            "RequestTimeout",
            "RpcTimeout",
            "RpcUnavailable",
            "ServiceUnavailable",
            "TooManyRequests",
            "Unauthorized",
            "UnsafeForProduction",
            "UnsupportedMediaType",
            "UpgradeRequired",
            "UpstreamError",
            "UpstreamTimeout",
            "UriTooLong",
            "ValidationFailed",
        ),
        "errors",
    ),
    **dict.fromkeys(
        (
            "EXCHANGE",
            "CloudEvent",
            "EventBus",
            "Handler",
            "RpcHandler",
            "Subscription",
            "topic_matches",
        ),
        "events",
    ),
    **dict.fromkeys(
        ("Check", "Health", "bus_check", "health_router", "jwks_check", "subscription_check"),
        "health",
    ),
    "Principal": "identity",
    "setup_logging": "logging",
    "InMemoryEventBus": "memory_bus",
    "ServiceMiddleware": "middleware",
    **dict.fromkeys(
        ("encode_problem", "error_envelope", "problem_body", "send_problem"), "problem"
    ),
    "install_problem_handlers": "problem_handlers",
    **dict.fromkeys(("TrustedPeers", "current_request", "note_user"), "requests"),
    "rpc_routing_key": "rpc",
    **dict.fromkeys(("BusSettings", "CommonSettings", "Profile", "mask_url"), "settings"),
    **dict.fromkeys(("JWTVerifier", "bearer_token"), "tokens"),
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once found, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
