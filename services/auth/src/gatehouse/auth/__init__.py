"""Gatehouse identity: login, refresh, logout, userinfo; an embedded Keycloak-like issuer."""

from gatehouse.auth.app import build_issuer, create_app
from gatehouse.auth.demo import DemoCredentials, demo_credentials
from gatehouse.auth.keycloak import KeycloakProvider
from gatehouse.auth.providers import EmbeddedProvider, IdentityProvider, TokenSet, UserInfo
from gatehouse.auth.settings import AuthSettings

__all__ = [
    "AuthSettings",
    "DemoCredentials",
    "EmbeddedProvider",
    "IdentityProvider",
    "KeycloakProvider",
    "TokenSet",
    "UserInfo",
    "build_issuer",
    "create_app",
    "demo_credentials",
]
