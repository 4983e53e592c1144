"""Prometheus metrics of the auth service (deploy/prometheus/alerts.yml and the Grafana
dashboard query them by these names: do not rename).

Every outcome is created at zero on import, so a dashboard shows a flat line rather
than no data before the first login.
"""

from __future__ import annotations

from prometheus_client import Counter

LOGINS = Counter(
    "gatehouse_auth_logins_total",
    "Password logins, by outcome: success, failure (bad credentials), throttled (a delay of "
    "the username or of the username and address was running), locked (hard lock), error.",
    ["outcome"],
)
LOCKOUTS = Counter(
    "gatehouse_auth_lockouts_total",
    "Usernames that reached the hard lock (GATEHOUSE_AUTH_LOCKOUT_FAILURES failures).",
)
REFRESHES = Counter(
    "gatehouse_auth_refreshes_total",
    "Refresh grants, by outcome: success, grace (a retry within the grace window answered "
    "with the same tokens), reused (a replaced token came back: its session was revoked), "
    "expired, invalid.",
    ["outcome"],
)
LOGIN_OUTCOMES = ("success", "failure", "throttled", "locked", "error")
REFRESH_OUTCOMES = ("success", "grace", "reused", "expired", "invalid", "error")

for _outcome in LOGIN_OUTCOMES:
    LOGINS.labels(_outcome)
for _outcome in REFRESH_OUTCOMES:
    REFRESHES.labels(_outcome)


def login(outcome: str) -> None:
    """Count one password login with ``outcome`` (one of :data:`LOGIN_OUTCOMES`)."""
    LOGINS.labels(outcome).inc()


def refresh(outcome: str) -> None:
    """Count one refresh grant with ``outcome`` (one of :data:`REFRESH_OUTCOMES`)."""
    REFRESHES.labels(outcome).inc()
