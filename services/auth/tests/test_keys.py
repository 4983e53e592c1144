from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest

from gatehouse.auth.embedded.keys import SigningKey


def test_the_key_is_created_private_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "issuer-key.pem"
    key = SigningKey.load_or_create(path)
    token = key.sign(
        {"iss": "i", "sub": "s", "iat": int(time.time()), "exp": int(time.time()) + 60}
    )
    restarted = SigningKey.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert restarted.kid == key.kid
    assert restarted.verify(token, issuer="i")["sub"] == "s"


def test_the_jwk_names_its_key_and_use(tmp_path: Path) -> None:
    jwk = SigningKey.load_or_create(tmp_path / "k.pem").jwk()
    assert {jwk["kty"], jwk["alg"], jwk["use"]} == {"RSA", "RS256", "sig"}
    assert jwk["kid"]
    assert "d" not in jwk


def test_a_token_of_another_key_does_not_verify(tmp_path: Path) -> None:
    now = int(time.time())
    forged = SigningKey.generate().sign({"iss": "i", "sub": "s", "iat": now, "exp": now + 60})
    with pytest.raises(jwt.InvalidSignatureError):
        SigningKey.load_or_create(tmp_path / "k.pem").verify(forged, issuer="i")
