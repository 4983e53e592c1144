"""Use cases: commands and queries handled inside a unit of work."""
