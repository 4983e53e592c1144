import gatehouse.auth


def test_the_public_names_are_pinned() -> None:
    assert sorted(gatehouse.auth.__all__) == [
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
    for name in gatehouse.auth.__all__:
        assert getattr(gatehouse.auth, name)
