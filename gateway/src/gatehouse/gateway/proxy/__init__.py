"""Forwarding to upstreams: HTTP, WebSocket, pools and replicas."""
