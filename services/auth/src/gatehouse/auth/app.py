"""The composition root of the auth service: ``create_app(settings)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth import api, internal
from gatehouse.auth.admin import endpoints as admin_endpoints
from gatehouse.auth.admin import open_admin
from gatehouse.auth.database import check_reachable, create_engine
from gatehouse.auth.demo import demo_credentials
from gatehouse.auth.embedded import oidc_routes
from gatehouse.auth.embedded.issuer import Issuer, IssuerConfig, OAuthError
from gatehouse.auth.embedded.key_ring import KeyRing
from gatehouse.auth.embedded.lockout import LockoutPolicy, LoginThrottle
from gatehouse.auth.embedded.revocations import RevocationLog
from gatehouse.auth.embedded.sql_lockout import SqlFailureStore
from gatehouse.auth.embedded.sql_sessions import SqlSessionStore
from gatehouse.auth.embedded.sql_users import SqlUserDirectory
from gatehouse.auth.key_admin import key_admin_router
from gatehouse.auth.keycloak import KeycloakProvider
from gatehouse.auth.migrations import SCRIPTS, migrate
from gatehouse.auth.providers import EmbeddedProvider, IdentityProvider
from gatehouse.auth.settings import AuthSettings
from gatehouse.auth.signing_keys import watch_signing_keys
from gatehouse.common import tracing
from gatehouse.common.bus import bus_from_url
from gatehouse.common.events import EventBus
from gatehouse.common.health import Check, CheckFn, Health, health_router
from gatehouse.common.middleware import ServiceMiddleware
from gatehouse.common.problem_handlers import install_problem_handlers
from gatehouse.common.requests import TrustedPeers
from gatehouse.common.sql import database_check

log = logging.getLogger("gatehouse.auth")


async def open_database(settings: AuthSettings) -> AsyncEngine:
    """The auth database, reachable and at the newest schema (migrated here in the
    embedded profile; in production only checked: ``gatehouse migrate auth`` migrates).

    Raises ``ConfigurationError`` naming the variable (password hidden) when the
    database does not answer.
    """
    engine = create_engine(settings.sqlalchemy_url(), setting=settings.database_setting())
    try:
        await check_reachable(engine, settings.database_setting())
        if settings.production:
            await SCRIPTS.require_current(engine, settings.database_setting())
        else:
            await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def build_issuer(
    settings: AuthSettings,
    hasher: PasswordHasher,
    engine: AsyncEngine,
    keys: KeyRing,
    *,
    revocations: RevocationLog | None = None,
) -> Issuer:
    """The embedded issuer with the demo users; its sessions, signing key and failed-login
    counters in ``engine``, shared by every replica of that database. A revoked session
    writes its item to ``revocations`` (for the gateway)."""
    config = IssuerConfig(
        issuer=settings.embedded_issuer_url(),
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value() if settings.client_secret else None,
        access_ttl=settings.access_token_ttl,
    )
    # Production without GATEHOUSE_DEMO_PASSWORD: no demo identities at all.
    users = SqlUserDirectory(engine, hasher, demo_users=settings.demo_users)
    if settings.demo_users:
        await users.seed_demo(demo_credentials(settings).password)
    return Issuer(
        config,
        keys,
        users,
        SqlSessionStore(
            engine,
            settings.refresh_token_ttl,
            settings.session_max_ttl,
            revocations=revocations,
            grace=settings.refresh_grace_seconds,
        ),
        LoginThrottle(SqlFailureStore(engine), lockout_policy(settings)),
    )


def lockout_policy(settings: AuthSettings) -> LockoutPolicy:
    return LockoutPolicy(
        throttle_failures=settings.throttle_failures,
        throttle_max=settings.throttle_max_seconds,
        slowdown_failures=settings.slowdown_failures,
        slowdown_max=settings.slowdown_max_seconds,
        lock_failures=settings.lockout_failures,
        lock_seconds=settings.lockout_seconds,
        reset_seconds=settings.failure_reset_seconds,
    )


def create_app(
    settings: AuthSettings,
    *,
    password_hasher: PasswordHasher | None = None,
    bus: EventBus | None = None,
) -> FastAPI:
    """The auth service. Without ``KEYCLOAK_URL`` it is also the embedded issuer, at
    Keycloak's paths under ``/realms/<realm>``.

    ``password_hasher`` sets the argon2 parameters of the embedded users (default:
    argon2-cffi's RFC 9106 low-memory profile). ``bus`` (the launcher's shared one, else
    ``AMQP_URL``'s) carries the admin API's ``gatehouse.user.*`` events.
    """
    hasher = password_hasher or PasswordHasher()
    health = Health()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            engine = issuer = keys = revocations = admin = None
            if settings.embedded:
                engine = await open_database(settings)
                stack.push_async_callback(engine.dispose)
                keys = await watch_signing_keys(settings, engine)
                stack.push_async_callback(keys.close)
                revocations = RevocationLog(engine, settings.access_token_ttl)
                issuer = await build_issuer(
                    settings, hasher, engine, keys.ring, revocations=revocations
                )
                admin = await open_admin(
                    stack, engine, issuer.users, revocations, await _bus(stack, settings, bus)
                )
                health.add("database", database_check(engine))
                health.add("schema", SCRIPTS.check(engine))
            provider: IdentityProvider = (
                EmbeddedProvider(issuer) if issuer else KeycloakProvider.from_settings(settings)
            )
            await provider.start()
            stack.push_async_callback(provider.close)
            stack.callback(health.stopping)
            health.add("jwks", _provider_check(provider, settings))
            health.started()
            log.info("auth service ready; issuer %s", settings.issuer())
            yield {
                "provider": provider,
                "issuer": issuer,
                "database": engine,
                "keys": keys,
                "revocations": revocations,
                "peers": TrustedPeers(settings.trusted_proxies),
                "admin": admin,
            }

    app = FastAPI(title="Gatehouse auth", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_exception_handler(OAuthError, _on_oauth_error)
    app.include_router(api.router)
    app.include_router(internal.router)
    app.include_router(admin_endpoints.router)
    if settings.embedded:
        app.include_router(oidc_routes.router)
        app.include_router(key_admin_router(settings))
    app.include_router(health_router(lambda: health))
    app.add_middleware(
        ServiceMiddleware,
        service="auth",
        trusted_proxies=settings.trusted_proxies,
        access_log=settings.access_log,
    )
    tracing.instrument_fastapi(app, "auth", settings.trusted_proxies)
    return app


async def _bus(
    stack: AsyncExitStack, settings: AuthSettings, given: EventBus | None
) -> EventBus | None:
    """The launcher's bus, or one of this service's own on ``AMQP_URL``, or none."""
    if given is not None or not settings.amqp_url:
        return given
    bus = bus_from_url(settings.amqp_url, exchange=settings.amqp_exchange)
    await bus.start()
    stack.push_async_callback(bus.close)
    return bus


async def _on_oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oidc_routes.oauth_error_response(exc)


def _provider_check(provider: IdentityProvider, settings: AuthSettings) -> CheckFn:
    """``jwks``: the signing keys of the issuer (Keycloak's, or the embedded one's) are usable."""

    async def check() -> Check:
        if await provider.ready():
            return Check(True, settings.issuer())
        return Check(False, f"no signing keys of {settings.issuer()}")

    return check
