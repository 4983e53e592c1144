"""Text that cannot corrupt data: what a name, title or bio may hold, and how names compare.

Rejected outright: control characters (C0, DEL, C1; a multi-line field keeps tab,
line feed and carriage return), lone surrogates (JSON can carry them; neither
PostgreSQL nor a UTF-8 file can store them) and Unicode noncharacters.
Accepted text is stored in NFC, with leading and trailing white space and
invisible characters removed.

Two names are the same name when their *keys* are equal. The key follows the
PRECIS Nickname profile (RFC 8266) for comparison: compatibility-normalised
(NFKC), case-folded, default-ignorable characters (zero-width space and joiners,
soft hyphen, BOM, ...) removed and every run of white space (NBSP, ideographic
space, ...) made one ASCII space. So "Octavia Butler", "octavia  BUTLER\u200b"
and the NFD spelling of "Léo" vs its NFC one collide.
"""

from __future__ import annotations

import re
import unicodedata

from gatehouse.authors.domain.errors import InvalidText

_MULTILINE_ALLOWED = frozenset("\t\n\r")
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside the Cf category.
_IGNORABLE_EXTRA = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_SPACES = re.compile(r"\s+")


def clean(value: str, field: str, *, max_length: int, multiline: bool = False) -> str:
    """``value`` checked and in NFC; raises :class:`InvalidText` naming ``field``."""
    for position, char in enumerate(value):
        if _forbidden(char, multiline):
            raise InvalidText(field, f"contains U+{ord(char):04X} at position {position}")
    text = _trim(unicodedata.normalize("NFC", value))
    if not text and not multiline:
        raise InvalidText(field, "must not be empty")
    if len(text) > max_length:
        raise InvalidText(field, f"must be at most {max_length} characters")
    return text


def key(value: str) -> str:
    """The comparison key of a name or title (RFC 8266 comparison, ignorables folded)."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    visible = "".join(c for c in folded if not _ignorable(c))
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", visible)).strip()


def _forbidden(char: str, multiline: bool) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return not (multiline and char in _MULTILINE_ALLOWED)
    if category == "Cs":
        return True
    code = ord(char)
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def _ignorable(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or bool(_IGNORABLE_EXTRA.match(char))


def _trim(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _blank(text[start]):
        start += 1
    while end > start and _blank(text[end - 1]):
        end -= 1
    return text[start:end]


def _blank(char: str) -> bool:
    return char.isspace() or _ignorable(char)
