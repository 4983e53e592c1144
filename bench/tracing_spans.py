"""What one span of ``gatehouse.common.tracing.span`` costs the process that makes it.

Tracing on, spans handed to an exporter that keeps nothing (no network, no encoding),
so the figure is the kit's and the SDK's work per span: sampled (recorded) and, with
``OTEL_TRACES_SAMPLER=always_off``, unsampled (what a sampled-out request pays).

    .venv/bin/python bench/tracing_spans.py [--spans 20000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from gatehouse.common import tracing

ATTRIBUTES = {"http.request.method": "GET", "url.path": "/api/v1/authors"}


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def per_span(count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        with tracing.span("gateway", "GET /api", attributes=ATTRIBUTES) as current:
            current.set_attribute("http.response.status_code", 200)
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--spans", type=int, default=20000)
    args = parser.parse_args()
    for sampler in ("parentbased_always_on", "always_off"):
        os.environ["OTEL_TRACES_SAMPLER"] = sampler
        tracing.use_exporter(Discard())
        per_span(1000)  # warm-up
        print(f"{sampler:22} {per_span(args.spans):6.1f} us per span")
        tracing.shutdown()
    tracing.use_exporter(None)


if __name__ == "__main__":
    main()
