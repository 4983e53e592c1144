"""Text that cannot corrupt data: what a name, title or bio may hold, and how names compare.

Rejected outright: control characters (C0, DEL, C1; a multi-line field keeps tab,
line feed and carriage return) and lone surrogates (JSON can carry them; neither
PostgreSQL nor a UTF-8 file can store them). Lengths count what the client sent.
Accepted text is stored in NFC, with leading and trailing blanks (white space and
the invisible characters of :data:`INVISIBLE`) removed; a name or title must keep
at least one other character. :data:`SINGLE_LINE` and :data:`MULTI_LINE` say the
same as JSON Schema patterns, for the API documentation.

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
# Blanks trimmed from both ends: white space (but controls, refused anyway) and the
# common invisible characters (soft hyphen, zero-width and bidi marks, BOM, ...).
SPACE = "\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
INVISIBLE = "\u00ad\u034f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
_BLANK = re.compile(f"[{SPACE}{INVISIBLE}]")
_CONTROLS = "\u0000-\u001f\u007f-\u009f"
SINGLE_LINE = f"^[^{_CONTROLS}]*[^{_CONTROLS}{SPACE}{INVISIBLE}][^{_CONTROLS}]*$"
MULTI_LINE = "^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside the Cf category.
_IGNORABLE_EXTRA = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_SPACES = re.compile(r"\s+")


def clean(value: str, field: str, *, max_length: int, multiline: bool = False) -> str:
    """``value`` checked and in NFC; raises :class:`InvalidText` naming ``field``."""
    if len(value) > max_length:
        raise InvalidText(field, f"must be at most {max_length} characters")
    for position, char in enumerate(value):
        if _forbidden(char, multiline):
            raise InvalidText(field, f"contains U+{ord(char):04X} at position {position}")
    text = _trim(unicodedata.normalize("NFC", value))
    if not text and not multiline:
        raise InvalidText(field, "must not be empty (or only blanks)")
    return text


FILTER = f"^[^{_CONTROLS}]*$"


def filter_key(value: str, field: str) -> str:
    """The key a filter (``name=``, ``search=``) compares with; controls are refused."""
    for position, char in enumerate(value):
        if _forbidden(char, multiline=False):
            raise InvalidText(field, f"contains U+{ord(char):04X} at position {position}")
    return key(value)


def key(value: str) -> str:
    """The comparison key of a name or title (RFC 8266 comparison, ignorables folded)."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    visible = "".join(c for c in folded if not _ignorable(c))
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", visible)).strip()


def _forbidden(char: str, multiline: bool) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return not (multiline and char in _MULTILINE_ALLOWED)
    return category == "Cs"


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
    return bool(_BLANK.match(char))
