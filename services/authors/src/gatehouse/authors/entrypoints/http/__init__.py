"""The HTTP API (FastAPI): ``/v1`` and ``/v2`` routers, health, OpenAPI."""
