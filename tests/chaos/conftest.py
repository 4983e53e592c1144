"""One split-mode cluster for the whole chaos suite (starting nine processes costs more
than any fault), and the scale of the run: ``short`` inside ``make test``,
``full`` under ``make chaos`` (``GATEHOUSE_CHAOS=full``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatehouse.testing import new_amqp_namespace, new_postgres_database, new_redis_namespace

from .cluster import Cluster
from .experiment import SCALES, Scale
from .proxies import ProxyHost


@pytest.fixture(scope="session")
def scale() -> Scale:
    return SCALES[os.environ.get("GATEHOUSE_CHAOS", "short")]


@pytest.fixture(scope="package")  # stopped before the next suite starts
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("chaos")
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(new_postgres_database())
        amqp = stack.enter_context(new_amqp_namespace())
        redis = stack.enter_context(new_redis_namespace())
        proxies = ProxyHost()
        stack.callback(proxies.close)
        cluster = Cluster(folder, postgres=postgres, amqp=amqp, redis=redis, proxies=proxies)
        # Stopped before the namespaces are removed: a service still running would
        # declare its queues again after the clean-up deleted them.
        stack.callback(cluster.stop_all)
        asyncio.run(cluster.boot())
        yield cluster


@pytest.fixture
def report() -> Iterator[dict[str, Any]]:
    """The figures of this test, appended to ``GATEHOUSE_CHAOS_REPORT`` (JSON lines)
    when that is set (make chaos: bench/RESULTS.md is written from it)."""
    figures: dict[str, Any] = {}
    yield figures
    target = os.environ.get("GATEHOUSE_CHAOS_REPORT")
    if target and figures:
        with Path(target).open("a") as output:
            output.write(json.dumps(figures) + "\n")
