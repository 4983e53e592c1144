"""The HTTP application of the authors service."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gatehouse.authors.bootstrap import bootstrap
from gatehouse.authors.entrypoints import schemas as api_schemas
from gatehouse.authors.entrypoints.http import problems
from gatehouse.authors.entrypoints.http.v1 import audit as v1_audit
from gatehouse.authors.entrypoints.http.v1 import authors as v1_authors
from gatehouse.authors.entrypoints.http.v1 import books as v1_books
from gatehouse.authors.entrypoints.http.v2 import routes as v2
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common import tracing
from gatehouse.common.events import EventBus
from gatehouse.common.health import Health, health_router
from gatehouse.common.middleware import ServiceMiddleware
from gatehouse.common.problem_handlers import install_problem_handlers
from gatehouse.common.tokens import JWTVerifier

DESCRIPTION = """\
Authors and their books. Every change is published as a CloudEvent
(`gatehouse.author.*`, `gatehouse.book.*`) through a transactional outbox and
recorded in the audit trail (`GET /v1/audit`).

* **Roles** (Keycloak realm or client roles; `admin` holds all): `get-authors`,
  `create-author`, `update-author`, `delete-author`, `view-audit-logs`. Each
  operation names its role (also as `x-roles`).
* **Concurrency**: every read answers an `ETag` (the version). Send it as
  `If-Match` on PUT/PATCH/DELETE to get a 412 instead of overwriting someone
  else's change; `If-None-Match` on GET answers 304 while unchanged.
* **Retries**: `Idempotency-Key` on POST and PATCH replays the first answer for
  24 h (per user); reusing a key for another body is a 422.
* **Errors** are `application/problem+json` (RFC 9457) with a stable `code`.
"""


def create_app(
    settings: AuthorsSettings,
    *,
    bus: EventBus | None = None,
    verifier: JWTVerifier | None = None,
) -> FastAPI:
    """Build the authors app. Resources are created in its lifespan, not here.

    ``bus`` / ``verifier``: when given (monolithic mode, tests), the app uses them and
    neither starts nor closes them; otherwise it builds and owns its own.
    The database must already be migrated (:func:`gatehouse.authors.migrations.migrate`).
    """

    health = Health()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            services = await bootstrap(stack, settings, bus=bus, verifier=verifier)
            app.state.services = services
            for name, check in services.checks().items():
                health.add(name, check)
            health.started()
            yield
            health.stopping()

    app = FastAPI(
        title="Gatehouse authors",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    for router in (v1_authors.router, v1_books.router, v1_audit.router, v2.router):
        app.include_router(router)
    app.include_router(health_router(lambda: health))
    install_problem_handlers(app)
    problems.install(app)
    app.add_middleware(
        ServiceMiddleware,
        service="authors",
        trusted_proxies=settings.trusted_proxies,
        access_log=settings.access_log,
    )
    tracing.instrument_fastapi(app, "authors", settings.trusted_proxies)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error as the problem+json it really is."""
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path in spec.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                _not_null(parameter)
            responses = operation.get("responses", {})
            default = responses.get("422", {}).get("content", {}).get("application/json")
            if default is not None:
                del responses["422"]
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(problems.SCHEMAS)
    _restore_examples(schemas)
    app.openapi_schema = spec
    return spec


def _restore_examples(schemas: dict[str, Any]) -> None:
    """FastAPI drops every ``null`` from the document, examples included, so an example
    of a field that is null (``"next_cursor": null``) would lack a member the API always
    sends: put each model's examples back as written."""
    for module in (api_schemas, v2):
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            extra = model.model_config.get("json_schema_extra")
            if isinstance(extra, dict) and "examples" in extra and model.__name__ in schemas:
                schemas[model.__name__]["examples"] = json.loads(json.dumps(extra["examples"]))


def _not_null(parameter: dict[str, Any]) -> None:
    """A parameter is absent or a string: ``anyOf [X, null]`` (FastAPI's optional) -> ``X``."""
    schema = parameter.get("schema", {})
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if "anyOf" in schema and len(options) == 1:
        del schema["anyOf"]
        schema.update(options[0])
