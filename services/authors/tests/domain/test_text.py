"""Text that cannot corrupt data: what is refused, what is normalised, which names clash."""

import unicodedata

import pytest

from gatehouse.authors.domain import text
from gatehouse.authors.domain.errors import InvalidText


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "a\x1fb", "a\x7fb", "a\x85b", "a\ud800b", "tab\there"],
)
def test_controls_and_lone_surrogates_are_refused(value: str) -> None:
    with pytest.raises(InvalidText) as caught:
        text.clean(value, "name", max_length=100)
    assert "U+" in caught.value.detail


def test_a_multiline_field_keeps_tabs_and_newlines_but_not_nul() -> None:
    assert text.clean("a\tb\r\nc", "bio", max_length=100, multiline=True) == "a\tb\r\nc"
    with pytest.raises(InvalidText):
        text.clean("a\x00", "bio", max_length=100, multiline=True)


def test_text_is_stored_in_nfc_without_outer_blanks_or_invisibles() -> None:
    nfd = unicodedata.normalize("NFD", "Léo")
    assert text.clean(f"\u00a0\u200b {nfd}\u200b ", "name", max_length=10) == "Léo"


@pytest.mark.parametrize(
    "other",
    [
        "Octavia Butler\u200b",
        "octavia butler",
        "OCTAVIA\u00a0BUTLER",
        "Octavia  Butler",
        "Octa\u00advia Butler",
        "\uff2f\uff43\uff54\uff41\uff56\uff49\uff41 Butler",  # full-width
    ],
)
def test_names_that_look_the_same_have_the_same_key(other: str) -> None:
    assert text.key(other) == text.key("Octavia Butler")


def test_nfc_and_nfd_spellings_have_the_same_key() -> None:
    assert text.key(unicodedata.normalize("NFD", "Léo")) == text.key("Léo")
    assert text.key("Léo") != text.key("Leo")


def test_length_counts_what_was_sent() -> None:
    nfd = unicodedata.normalize("NFD", "é" * 10)  # 20 code points sent, 10 stored
    assert text.clean(nfd, "name", max_length=20) == "é" * 10
    with pytest.raises(InvalidText):
        text.clean(nfd, "name", max_length=19)
