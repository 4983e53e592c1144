"""Every log line written for a request names it, in every process it crosses: the
gateway's and the upstream's lines carry the client's ``request_id`` (the one its
answer's ``X-Request-ID`` gives) and the one ``trace_id`` of the request (none with
tracing off and no trusted caller's trace: then no line claims one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gatehouse.testing import LogLines, bind_loopback, recorded_spans, serve, serve_issuer

from .conftest import build_authors

# Loggers that write for a request (background work, such as the relay or the
# revocation poll, logs on loggers of its own).
REQUEST_LOGGERS = {"gatehouse.access", "gatehouse.errors", "gatehouse.gateway"}


@pytest.fixture(params=["tracing on", "tracing off"])
def exported(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter | None]:
    if request.param == "tracing off":
        yield None
        return
    with recorded_spans() as spans:
        yield spans


async def test_the_lines_of_a_request_carry_its_request_and_trace_ids_in_every_process(
    tmp_path: Path, exported: InMemorySpanExporter | None, log_lines: LogLines
) -> None:
    from gatehouse.gateway.app import create_app
    from gatehouse.gateway.settings import GatewaySettings

    with bind_loopback() as sock:  # where nothing listens: realtime and auth are away
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with serve_issuer() as issuer:
        authors = await build_authors(tmp_path, OIDC_ISSUER=issuer.issuer_url)
        async with serve(authors) as authors_url:
            settings = GatewaySettings(
                oidc_issuer=issuer.issuer_url,
                redis_url=None,
                upstream_authors_url=authors_url,
                upstream_realtime_url=dead,
                upstream_auth_url=dead,
            )
            async with serve(create_app(settings)) as url, httpx.AsyncClient() as client:
                editor = issuer.bearer(["create-author"])
                before = len(log_lines.lines)
                created = await client.post(
                    f"{url}/api/v1/authors", json={"name": "N. K. Jemisin"}, headers=editor
                )
                failed = await client.post(f"{url}/auth/token", json={"username": "x"})
                during = log_lines.lines[before:]
    assert (created.status_code, failed.status_code) == (201, 502)
    traces = _server_traces(exported) if exported else {}
    for response, services in ((created, {"authors"}), (failed, {"gateway"})):
        rid = response.headers["x-request-id"]
        lines = [line for line in log_lines.lines if line.get("request_id") == rid]
        assert {_service(line) for line in lines} >= services, lines
        assert {line.get("trace_id") for line in lines} == {traces.get(rid)}, lines
    unnamed = [x for x in during if x["logger"] in REQUEST_LOGGERS and not x.get("request_id")]
    assert unnamed == []


def _server_traces(spans: InMemorySpanExporter) -> dict[str, str]:
    """The trace id of each request, by the request id the gateway gave its server span."""
    return {
        str(s.attributes["gatehouse.request_id"]): f"{s.context.trace_id:032x}"
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.attributes and "gatehouse.request_id" in s.attributes
    }


def _service(line: dict[str, Any]) -> str:
    return "gateway" if line["logger"].startswith("gatehouse.gateway") else "authors"
