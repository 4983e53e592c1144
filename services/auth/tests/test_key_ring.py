"""The key ring's timeline: publish, sign, retire, drop."""

from __future__ import annotations

import time

import jwt
import pytest

from gatehouse.auth.embedded.key_ring import KeyRing, RingKey
from gatehouse.auth.embedded.keys import SigningKey

OVERLAP = 360.0
ISSUER = "http://issuer.test/realms/gatehouse"
FIRST, SECOND = SigningKey.generate(), SigningKey.generate()


def ring() -> KeyRing:
    """FIRST signs from 0; SECOND is added at 1000 and signs from 1010."""
    return KeyRing([RingKey(SECOND, 1000, 1010), RingKey(FIRST, 0, 0)], OVERLAP)


def kids(entries: list[RingKey]) -> list[str]:
    return [entry.kid for entry in entries]


def token(key: SigningKey, now: float) -> str:
    return key.sign({"iss": ISSUER, "sub": "s", "iat": int(now), "exp": int(now) + 300})


def test_a_new_key_is_published_before_it_signs() -> None:
    assert ring().signer(1005).kid == FIRST.kid
    assert kids(ring().published(1005)) == [FIRST.kid, SECOND.kid]


def test_the_new_key_signs_from_its_activation_and_the_old_stays_published() -> None:
    assert ring().signer(1010).kid == SECOND.kid
    assert kids(ring().published(1010 + OVERLAP - 1)) == [FIRST.kid, SECOND.kid]
    assert ring().expired(1010 + OVERLAP - 1) == []


def test_the_old_key_is_dropped_once_its_tokens_have_expired() -> None:
    later = 1010 + OVERLAP
    assert kids(ring().published(later)) == [SECOND.kid]
    assert kids(ring().expired(later)) == [FIRST.kid]
    assert ring().find(FIRST.kid, later) is None


def test_tokens_of_both_keys_verify_through_the_rotation() -> None:
    now = time.time()  # the tokens' exp is checked against the real clock
    keys = KeyRing([RingKey(FIRST, 0, 0), RingKey(SECOND, now - 10, now - 5)], OVERLAP)
    old, new = token(FIRST, now - 6), token(SECOND, now)
    assert keys.verify(old, issuer=ISSUER, now=now)["sub"] == "s"
    assert keys.verify(new, issuer=ISSUER, now=now)["sub"] == "s"
    with pytest.raises(jwt.PyJWTError):
        keys.verify(old, issuer=ISSUER, now=now - 5 + OVERLAP)  # its key is gone


def test_a_token_of_an_unknown_key_does_not_verify() -> None:
    with pytest.raises(jwt.PyJWTError):
        ring().verify(token(SigningKey.generate(), 1000), issuer=ISSUER, now=1000)


def test_while_no_key_is_active_the_oldest_signs() -> None:
    skewed = KeyRing([RingKey(FIRST, 100, 100)], OVERLAP)
    assert skewed.signer(50).kid == FIRST.kid
    assert kids(skewed.published(50)) == [FIRST.kid]


def test_an_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        KeyRing([], OVERLAP)
