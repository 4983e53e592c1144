"""Bodies of the admin API. Schemas say exactly what is accepted: a body that fits is
never refused for its shape, one that does not is a 422."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.json_schema import SkipJsonSchema

from gatehouse.auth.schemas import MAX_PASSWORD, MAX_USERNAME
from gatehouse.common.identity import ALL_ROLES

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"
MIN_PASSWORD = 8
MAX_PER_PAGE = 100
MAX_PAGE = 100_000
Password = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)]


class AdminRole(StrEnum):
    """The roles of DESIGN §12 (``gatehouse.common.identity.ALL_ROLES``; a test pins it)."""

    ADMIN = "admin"
    GET_AUTHORS = "get-authors"
    CREATE_AUTHOR = "create-author"
    UPDATE_AUTHOR = "update-author"
    DELETE_AUTHOR = "delete-author"
    VIEW_AUDIT_LOGS = "view-audit-logs"


class AdminNewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(
        min_length=1,
        max_length=MAX_USERNAME,
        pattern=USERNAME_PATTERN,
        description="Case-insensitive; stored in lower case.",
    )
    password: Password
    roles: list[AdminRole] = Field(default_factory=list, max_length=len(ALL_ROLES))
    enabled: StrictBool = True


class AdminUserPatch(BaseModel):
    """What to change: ``enabled``, ``password`` or both (at least one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    enabled: StrictBool | SkipJsonSchema[None] = None
    password: Password | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        given = self.model_fields_set
        if not given:
            raise ValueError("give enabled, password or both")
        if any(getattr(self, name) is None for name in given):
            raise ValueError("enabled and password cannot be null")
        return self


class AdminUser(BaseModel):
    username: str
    subject: str = Field(description="The `sub` of the user's tokens.")
    roles: list[str]
    enabled: bool
    created_at: float = Field(description="POSIX seconds.")
    updated_at: float = Field(description="POSIX seconds.")


class AdminPageMeta(BaseModel):
    page: int
    per_page: int
    total: int
    pages: int


class AdminUserPage(BaseModel):
    items: list[AdminUser]
    meta: AdminPageMeta


class AdminAuditRecord(BaseModel):
    id: str = Field(description="The id of the gatehouse.user.* event of this change.")
    at: float = Field(description="POSIX seconds.")
    actor: str = Field(description="The admin's username.")
    actor_subject: str
    actor_roles: list[str]
    action: str = Field(description="user.created, user.updated, user.role_granted, ...")
    resource: str
    data: dict[str, Any] = Field(description="What changed; never a password.")
    ip: str
    user_agent: str
    request_id: str
    published: bool = Field(description="Whether its event has reached the bus.")


class AdminAuditPage(BaseModel):
    items: list[AdminAuditRecord]
    meta: AdminPageMeta
