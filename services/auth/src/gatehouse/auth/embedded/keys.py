"""The issuer's RSA signing keys, sealed with a passphrase when they are stored.

Stored keys are PKCS#8 PEM encrypted with ``GATEHOUSE_AUTH_KEY_PASSPHRASE``
(cryptography's best available scheme); without a passphrase (the embedded profile on
one machine) they are plain PEM in a private folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gatehouse.common.errors import ConfigurationError

log = logging.getLogger("gatehouse.auth.embedded.keys")
ALGORITHM = "RS256"
KEY_FILE = "issuer-key.pem"
PASSPHRASE_SETTING = "GATEHOUSE_AUTH_KEY_PASSPHRASE"  # noqa: S105 (a variable name)
_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


class SigningKey:
    """One RS256 key with its RFC 7638 thumbprint as ``kid``."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._private = private_key
        self.public_jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
        self.kid = _thumbprint(self.public_jwk)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def from_pem(
        cls, pem: bytes, source: str = "the PEM", passphrase: bytes | None = None
    ) -> SigningKey:
        """Read a key; ``passphrase`` opens a sealed one (a plain one needs none).

        Raises ``ConfigurationError`` naming the passphrase setting when a sealed key
        comes without it or does not open with it.
        """
        sealed = is_sealed(pem)
        if sealed and passphrase is None:
            raise ConfigurationError(PASSPHRASE_SETTING, f"is needed to read {source}")
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase if sealed else None)
        except ValueError:
            if not sealed:
                raise
            raise ConfigurationError(PASSPHRASE_SETTING, f"does not open {source}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{source} does not hold an RSA private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Read the PEM at ``path``; create it (mode 0600) when absent."""
        if not path.exists():
            _write_new_key(path)
        return cls.from_pem(path.read_bytes(), str(path))

    def pem(self, passphrase: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM, sealed with ``passphrase`` when one is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def jwk(self) -> dict[str, Any]:
        """The public key as Keycloak's JWKS lists it."""
        return {**self.public_jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}

    def public_key_der(self) -> str:
        """The public key as Keycloak's realm page shows it: base64 SubjectPublicKeyInfo."""
        der = self._private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str, *, issuer: str, leeway: float = 0) -> dict[str, Any]:
        """Decode a token this key signed; raises ``jwt.PyJWTError`` when it does not verify."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._private.public_key(),
            algorithms=[ALGORITHM],
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
        )
        return claims


def is_sealed(pem: bytes) -> bool:
    """Whether ``pem`` is an encrypted PKCS#8 key."""
    return pem.lstrip().startswith(_ENCRYPTED_PEM)


def _write_new_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = SigningKey.generate().pem()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process won the race; use its key
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    log.info("generated a new issuer signing key in %s", path)


def _thumbprint(jwk: dict[str, Any]) -> str:
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
