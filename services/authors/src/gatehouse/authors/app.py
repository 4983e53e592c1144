"""The authors service's HTTP application (what ``gatehouse run authors`` serves)."""

from gatehouse.authors.entrypoints.http.app import create_app

__all__ = ["create_app"]
