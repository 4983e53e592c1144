"""Gatehouse authors service: authors (and later books) with a transactional outbox."""
