"""Test support for Gatehouse suites: a dev-only distribution (``gatehouse-testing``).

Nothing here ships in a runtime wheel: the services never import it, and a test of
the architecture keeps it that way. What it holds:

* :class:`TestIssuer`, the in-memory adapter of the identity provider (a real OIDC
  issuer signing Keycloak-shaped RS256 tokens), and :func:`serve_issuer`;
* :func:`serve` and :func:`bind_loopback`: an ASGI app on a free loopback port;
* :class:`TcpProxy`: a TCP proxy a test owns, to cut a dependency (database,
  broker, Redis) without touching the shared service;
* :func:`recorded_spans` (fixture ``spans``) and :class:`OtlpCollector`: the spans
  this process, or the processes a test started, made;
* :class:`LogLines` (fixture ``log_lines``): this process's log records as JSON lines;
* the pytest plugin :mod:`gatehouse.testing.plugin` (loaded automatically):
  ``postgres_url``, ``empty_database_url``, ``redis_namespace``, ``amqp_namespace``,
  and the context managers behind them for longer scopes (``new_postgres_database``, ...).
"""

from gatehouse.testing._issuer import DEFAULT_ISSUER_URL, TestIssuer, serve_issuer
from gatehouse.testing._logs import LogLines
from gatehouse.testing._server import bind_loopback, serve
from gatehouse.testing._tcp_proxy import TcpProxy
from gatehouse.testing._tracing import CollectedSpan, OtlpCollector, recorded_spans
from gatehouse.testing.plugin import (
    AmqpNamespace,
    RedisNamespace,
    new_amqp_namespace,
    new_postgres_database,
    new_redis_namespace,
)

__all__ = [
    "DEFAULT_ISSUER_URL",
    "AmqpNamespace",
    "CollectedSpan",
    "LogLines",
    "OtlpCollector",
    "RedisNamespace",
    "TcpProxy",
    "TestIssuer",
    "bind_loopback",
    "new_amqp_namespace",
    "new_postgres_database",
    "new_redis_namespace",
    "recorded_spans",
    "serve",
    "serve_issuer",
]
