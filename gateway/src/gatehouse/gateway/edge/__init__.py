"""The edge: one policy stage and one response decorator."""
