"""The authenticated caller, as every service sees it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The role names of the original template; existing Keycloak realms rely on them.
ADMIN = "admin"
GET_AUTHORS = "get-authors"
CREATE_AUTHOR = "create-author"
UPDATE_AUTHOR = "update-author"
DELETE_AUTHOR = "delete-author"
VIEW_AUDIT_LOGS = "view-audit-logs"
ALL_ROLES = (ADMIN, GET_AUTHORS, CREATE_AUTHOR, UPDATE_AUTHOR, DELETE_AUTHOR, VIEW_AUDIT_LOGS)


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified identity: subject, username and the roles the token grants."""

    subject: str
    username: str
    roles: frozenset[str]
    expires_at: int = 0
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_any(self, roles: Iterable[str]) -> bool:
        """True when the principal holds one of ``roles`` (``admin`` holds every role)."""
        wanted = set(roles)
        return not wanted or ADMIN in self.roles or bool(self.roles & wanted)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], client_id: str | None) -> Principal:
        """Read Keycloak-shaped claims: ``realm_access.roles`` and the client's roles."""
        roles = set(_roles(claims.get("realm_access")))
        if client_id:
            resource = claims.get("resource_access")
            if isinstance(resource, Mapping):
                roles.update(_roles(resource.get(client_id)))
        subject = str(claims.get("sub", ""))
        return cls(
            subject=subject,
            username=str(claims.get("preferred_username") or subject),
            roles=frozenset(roles),
            expires_at=int(claims.get("exp", 0)),
            claims=dict(claims),
        )


def _roles(section: Any) -> list[str]:
    if not isinstance(section, Mapping):
        return []
    roles = section.get("roles")
    return [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
