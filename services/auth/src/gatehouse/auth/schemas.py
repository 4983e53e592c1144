"""Request and response bodies of the public ``/auth`` API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_USERNAME = 255  # Keycloak's limit
MAX_PASSWORD = 1024
MAX_TOKEN = 8192


class Credentials(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(min_length=1, max_length=MAX_USERNAME)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=MAX_TOKEN)


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="Seconds until the access token expires.")


class Me(BaseModel):
    sub: str = Field(description="Stable subject id of the user.")
    username: str
    roles: list[str]
