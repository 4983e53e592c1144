"""One style of problem ``code`` everywhere: a status the framework answers (a router's
404 or 405, an ``HTTPException``) carries the same snake_case code as the error class
of that status (gatehouse.common.errors) that services and the gateway raise (#5: ``not_found``,
never ``http_404``; ``rate_limited``, never ``too_many_requests``)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from gatehouse.common import errors
from gatehouse.common.problem import status_code_word
from gatehouse.testing import serve

from .conftest import AppFactory

# The error class that stands for its status (others are more specific: rpc_timeout).
STANDING_FOR_STATUS = [
    errors.GatehouseError,
    errors.BadRequest,
    errors.Unauthorized,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.PayloadTooLarge,
    errors.ValidationFailed,
    errors.TooManyRequests,
    errors.UpstreamError,
    errors.ServiceUnavailable,
    errors.UpstreamTimeout,
    errors.MethodNotAllowed,
    errors.RequestTimeout,
    errors.UriTooLong,
    errors.UnsupportedMediaType,
    errors.HeadersTooLarge,
    errors.UpgradeRequired,
    errors.PreconditionRequired,
]


@pytest.mark.parametrize("error", STANDING_FOR_STATUS, ids=lambda e: e.__name__)
def test_a_status_has_the_code_of_its_error_class(error: type[errors.GatehouseError]) -> None:
    assert status_code_word(error.status) == error.code


def test_a_status_without_an_error_class_is_its_reason_phrase_in_snake_case() -> None:
    assert status_code_word(418) == "i_m_a_teapot"
    assert status_code_word(599) == "error"


async def test_each_service_answers_framework_errors_with_the_kits_codes(
    build_service: AppFactory,
) -> None:
    app = await build_service()
    _add_raising_route(app)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        codes = {
            status: (await client.get(f"/kit-test/status/{status}")).json()["code"]
            for status in (413, 429, 503, 504)
        }
        not_allowed = await client.delete("/kit-test/status/404")
    assert codes == {
        413: "payload_too_large",
        429: "rate_limited",
        503: "unavailable",
        504: "upstream_timeout",
    }
    assert not_allowed.status_code == 405
    assert not_allowed.json()["code"] == "method_not_allowed"


def _add_raising_route(app: FastAPI) -> None:
    @app.get("/kit-test/status/{status}")
    async def fail(status: int) -> None:
        raise HTTPException(status)
