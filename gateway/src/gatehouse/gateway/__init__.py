"""Gatehouse edge: authentication, RBAC, rate limits, circuit breakers, HTTP and WS proxy."""

from gatehouse.gateway.app import create_app
from gatehouse.gateway.config import GatewayConfig, load_config
from gatehouse.gateway.settings import GatewaySettings

__all__ = ["GatewayConfig", "GatewaySettings", "create_app", "load_config"]
