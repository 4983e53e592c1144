"""The fixtures for the real PostgreSQL, Redis and RabbitMQ (``postgres_url``,
``empty_database_url``, ``redis_namespace``, ``amqp_namespace``) come from the pytest
plugin of the dev-only distribution ``gatehouse-testing``
(``libs/testing/src/gatehouse/testing/plugin.py``), loaded automatically."""
