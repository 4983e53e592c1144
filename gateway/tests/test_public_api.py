"""The names the launcher imports stay stable."""

import gatehouse.gateway


def test_exported_names() -> None:
    assert sorted(gatehouse.gateway.__all__) == [
        "GatewayConfig",
        "GatewaySettings",
        "create_app",
        "load_config",
    ]
