"""Alembic environment: runs on the connection :func:`migrate` hands over, or on ``-x url=``."""

from gatehouse.authors.adapters.database import create_engine
from gatehouse.authors.adapters.orm import metadata
from gatehouse.authors.migrations import SCRIPTS
from gatehouse.common.sql import run_environment

run_environment(SCRIPTS, metadata, create_engine)
