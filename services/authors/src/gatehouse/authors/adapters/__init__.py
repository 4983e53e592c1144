"""Adapters: SQLAlchemy persistence, the outbox, HTTP, and in-memory fakes."""
