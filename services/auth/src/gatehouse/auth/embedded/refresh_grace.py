"""The answer to a refresh, kept for a retry of it, readable only with the refresh token
that was presented.

A client whose refresh response was lost presents the same refresh token again. Within
the grace window the store hands back the answer it gave the first time, sealed here:
AES-256-GCM under a key derived (HKDF-SHA256) from that refresh token. The database
holds only the token's SHA-256 digest, so whoever reads the database can neither
present the token nor open the sealed answer; only the token's holder can.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"gatehouse refresh grace v1"
_NONCE = 12


def seal(refresh_token: str, answer: bytes) -> bytes:
    """``answer`` encrypted for the holder of ``refresh_token``: nonce + ciphertext + tag."""
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(_key(refresh_token)).encrypt(nonce, answer, _INFO)


def unseal(refresh_token: str, sealed: bytes) -> bytes | None:
    """What :func:`seal` sealed for ``refresh_token``; None for any other token or damage."""
    try:
        return AESGCM(_key(refresh_token)).decrypt(sealed[:_NONCE], sealed[_NONCE:], _INFO)
    except (InvalidTag, ValueError):
        return None


def _key(refresh_token: str) -> bytes:
    # The token carries 256 random bits: a fast KDF is enough, no password stretching.
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return hkdf.derive(refresh_token.encode())
