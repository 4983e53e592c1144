"""Gatehouse realtime service: WebSocket subscriptions and live events."""

from gatehouse.realtime.app import create_app
from gatehouse.realtime.server import UVICORN_WS_OPTIONS, uvicorn_ws_options
from gatehouse.realtime.settings import RealtimeSettings

__all__ = ["UVICORN_WS_OPTIONS", "RealtimeSettings", "create_app", "uvicorn_ws_options"]
