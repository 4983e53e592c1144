"""Which peers a service believes, and what it takes from them."""

from __future__ import annotations

from gatehouse.common.requests import TrustedPeers


def _scope(peer: str, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 40000), "headers": headers}


def test_the_client_address_is_the_right_most_untrusted_forwarded_entry() -> None:
    peers = TrustedPeers(["10.0.0.0/8", "127.0.0.0/8"])
    # The client claims 1.2.3.4; the edge proxy appended the real address; the mesh added its own.
    scope = _scope("10.0.0.5", "1.2.3.4, 203.0.113.7", "10.0.0.9")
    assert peers.client_ip(scope) == "203.0.113.7"
    assert peers.client_ip(_scope("198.51.100.1", "1.2.3.4")) == "198.51.100.1"  # untrusted peer
    assert peers.client_ip(_scope("127.0.0.1")) == "127.0.0.1"
    assert peers.client_ip(_scope("127.0.0.1", "10.0.0.2, 10.0.0.3")) == "10.0.0.2"
