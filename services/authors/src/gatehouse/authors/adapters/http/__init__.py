"""The HTTP adapter: FastAPI routers, request/response schemas and dependencies."""
