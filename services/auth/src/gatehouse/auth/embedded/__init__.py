"""The embedded Keycloak-compatible issuer: OIDC routes, key ring, sessions, users, lockout.

It runs when ``KEYCLOAK_URL`` is unset (``make run``, tests, and production deployments
that opt in with ``GATEHOUSE_AUTH_EMBEDDED_ISSUER=true``) and keeps its state in the
auth database, so that restarts and replicas share it.
"""
