"""The issuer's key ring: which key signs now, which keys the JWKS publishes.

A rotation adds a key that activates later (``activates_at``): it is published at
once, so every replica and every verifier can know it before any token carries its
``kid``, and every replica starts signing with it at the same moment. The key it
replaces stops signing then, and stays published for ``overlap`` seconds more: the
longest a token it signed can still be valid (access and ID token lifetime plus the
verifiers' leeway). After that it is dropped from the JWKS, and later deleted.

Times are POSIX seconds. Nothing here does I/O: ``key_store`` reads and writes the
rows, and replaces the ring's entries when another replica has rotated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from gatehouse.auth.embedded.keys import SigningKey


@dataclass(frozen=True, slots=True)
class RingKey:
    key: SigningKey
    created_at: float
    activates_at: float

    @property
    def kid(self) -> str:
        return self.key.kid


class KeyRing:
    """The keys of one issuer, ordered by activation; never empty."""

    def __init__(self, keys: Iterable[RingKey], overlap: float) -> None:
        self.overlap = overlap
        self._keys: tuple[RingKey, ...] = ()
        self.replace(keys)

    def replace(self, keys: Iterable[RingKey]) -> None:
        """Take the keys another replica may have added or deleted (one assignment: no
        reader sees half of it)."""
        ordered = tuple(sorted(keys, key=lambda k: (k.activates_at, k.created_at, k.kid)))
        if not ordered:
            raise ValueError("a key ring needs at least one key")
        self._keys = ordered

    @property
    def entries(self) -> tuple[RingKey, ...]:
        return self._keys

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(k.kid for k in self._keys)

    def signer(self, now: float) -> RingKey:
        """The newest key already active; the oldest one while none is (clock skew)."""
        active = [k for k in self._keys if k.activates_at <= now]
        return active[-1] if active else self._keys[0]

    def published(self, now: float) -> list[RingKey]:
        """The signer, the keys waiting to activate, and retired keys whose tokens may
        still be valid; in activation order."""
        return [
            k
            for k, retired in self._retirements(now)
            if retired is None or not self._gone(retired, now)
        ]

    def expired(self, now: float) -> list[RingKey]:
        """Keys no token can need any more: dropped from the JWKS, safe to delete."""
        return [
            k
            for k, retired in self._retirements(now)
            if retired is not None and self._gone(retired, now)
        ]

    def find(self, kid: str, now: float) -> SigningKey | None:
        """The published key ``kid``; None for an unknown or dropped key."""
        return next((k.key for k in self.published(now) if k.kid == kid), None)

    def verify(self, token: str, *, issuer: str, now: float) -> dict[str, object]:
        """Claims of a token one of the published keys signed; raises ``jwt.PyJWTError``."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = self.find(kid, now) if isinstance(kid, str) else None
        if key is None:
            raise jwt.InvalidKeyError("unknown signing key")
        return key.verify(token, issuer=issuer)

    def _retirements(self, now: float) -> list[tuple[RingKey, float | None]]:
        """Each key with the moment it stopped signing (None: it still signs or waits)."""
        signer = self.signer(now)
        result: list[tuple[RingKey, float | None]] = []
        for index, key in enumerate(self._keys):
            successor = self._keys[index + 1] if index + 1 < len(self._keys) else None
            stopped = successor is not None and successor.activates_at <= now and key is not signer
            result.append((key, successor.activates_at if stopped and successor else None))
        return result

    def _gone(self, retired: float, now: float) -> bool:
        return now >= retired + self.overlap
