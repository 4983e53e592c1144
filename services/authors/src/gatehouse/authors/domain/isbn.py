"""ISBN-10 and ISBN-13: checked, and stored in one canonical form (13 digits)."""

from __future__ import annotations

import re

from gatehouse.authors.domain.errors import InvalidBook

_SEPARATORS = re.compile(r"[\s-]")
_ISBN10 = re.compile(r"^\d{9}[\dX]$")
_ISBN13 = re.compile(r"^97[89]\d{10}$")


def canonical_isbn(value: str) -> str:
    """The ISBN-13 digits of ``value`` (hyphens and spaces allowed, ISBN-10 converted)."""
    digits = _SEPARATORS.sub("", value).upper()
    if len(digits) > 20:
        raise InvalidBook("isbn", "is not an ISBN-10 or ISBN-13")
    if _ISBN13.match(digits) and _check13(digits[:12]) == digits[12]:
        return digits
    if _ISBN10.match(digits) and _check10(digits[:9]) == digits[9]:
        body = "978" + digits[:9]
        return body + _check13(body)
    raise InvalidBook("isbn", "is not a valid ISBN-10 or ISBN-13 (check digit included)")


def _check13(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return str((10 - total % 10) % 10)


def _check10(body: str) -> str:
    total = sum(int(d) * (10 - i) for i, d in enumerate(body))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)
