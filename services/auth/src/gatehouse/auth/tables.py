"""The auth schema (SQLAlchemy Core): refresh sessions, retired token digests, signing keys,
failed-login counters.

Times are POSIX seconds (float), as the session store's clock gives them.
"""

from __future__ import annotations

import sqlalchemy as sa

# Alembic's version table, named apart so auth can share a database with another service.
VERSION_TABLE = "auth_alembic_version"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(255), nullable=False),
    sa.Column("client_id", sa.String(255), nullable=False),
    sa.Column("scope", sa.String(255), nullable=False),
    sa.Column("started_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Column("ends_at", sa.Double(), nullable=False),
    # SHA-256 hex of the current refresh token: never the token itself.
    sa.Column("token_digest", sa.String(64), nullable=False, unique=True),
    sa.Column("revoked", sa.Boolean(), nullable=False, default=False),
)

# Digests of replaced refresh tokens: presenting one again revokes its session.
retired_tokens = sa.Table(
    "auth_retired_tokens",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column(
        "session_id",
        sa.String(32),
        sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # The refresh grace window: when the token was replaced, the digest of the token that
    # replaced it, and the answer to that refresh sealed with a key derived from the
    # replaced token (embedded/refresh_grace.py). NULL on rows of earlier versions.
    sa.Column("retired_at", sa.Double(), nullable=True),
    sa.Column("successor", sa.String(64), nullable=True),
    sa.Column("sealed", sa.LargeBinary(), nullable=True),
)

signing_keys = sa.Table(
    "auth_signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    # PKCS#8 PEM, encrypted with GATEHOUSE_AUTH_KEY_PASSPHRASE when it is set.
    sa.Column("private_pem", sa.Text(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    # "current" on the first key installed, NULL on keys added by rotation; unique, so
    # that replicas starting together on an empty table cannot both install a key.
    sa.Column("slot", sa.String(16), nullable=True, unique=True),
    # When the key starts signing (published before that); NULL: at created_at.
    sa.Column("activates_at", sa.Double(), nullable=True),
)

# What the gateway refuses before it expires: revoked sessions and subjects
# (gatehouse.auth.embedded.revocations, GET /internal/revocations).
revocations = sa.Table(
    "auth_revocations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ident", sa.String(255), nullable=False),
    sa.Column("revoked_at", sa.Double(), nullable=False, index=True),
    sa.Column("expires_at", sa.Double(), nullable=False, index=True),
)

# Failed-login counters of the throttle (embedded/lockout.py), shared by every replica.
login_failures = sa.Table(
    "auth_login_failures",
    metadata,
    # SHA-256 hex of the username (and client address): neither is kept in clear.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("last_at", sa.Double(), nullable=False, index=True),
)

# Users of the embedded issuer (gatehouse.auth.embedded.sql_users, the admin API).
users = sa.Table(
    "auth_users",
    metadata,
    sa.Column("username", sa.String(255), primary_key=True),  # lower case
    sa.Column("subject", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    # A demo identity no admin has changed: the demo password still sets its password.
    sa.Column("seeded", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.Double(), nullable=False),
    sa.Column("updated_at", sa.Double(), nullable=False),
)

# One row a role held: granting and revoking are an insert and a delete, never a
# read-modify-write that two admins could race.
user_roles = sa.Table(
    "auth_user_roles",
    metadata,
    sa.Column(
        "username",
        sa.String(255),
        sa.ForeignKey("auth_users.username", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", sa.String(64), primary_key=True),
)

# Every change of the admin API (who, what, when), append-only, and the outbox of its
# gatehouse.user.* events: ``event`` is the CloudEvent, ``published_at`` set once sent.
audit = sa.Table(
    "auth_audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("at", sa.Double(), nullable=False, index=True),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("actor_subject", sa.String(64), nullable=False),
    sa.Column("actor_roles", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("resource", sa.String(512), nullable=False),
    sa.Column("data", sa.Text(), nullable=False),  # JSON, never a password
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("user_agent", sa.String(512), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("event", sa.Text(), nullable=False),
    sa.Column("published_at", sa.Double(), nullable=True, index=True),
    sa.Column("sequence", sa.BigInteger(), nullable=True),  # stamped when published
)

# The last ``sequence`` the relay stamped (one row). Relays lock it while they publish,
# so one publishes at a time and ``sequence`` follows publication order.
event_sequence = sa.Table(
    "auth_event_sequence",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
)
