"""Alembic environment: runs on the connection :func:`migrate` hands over, or on ``-x url=``."""

from gatehouse.auth.database import create_engine
from gatehouse.auth.migrations import SCRIPTS
from gatehouse.auth.tables import metadata
from gatehouse.common.sql import run_environment

run_environment(SCRIPTS, metadata, create_engine)
