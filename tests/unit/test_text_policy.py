"""The runtime's text policy (services/runtime/text.py): every kind of
character that must not reach a store, in several shapes, inside nested
requests; NFC; visible names; sizes."""

from __future__ import annotations

import unicodedata

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.runtime.errors import InvalidInput
from services.runtime.text import (
    MAX_TEXT,
    check_text,
    clean_request,
    free_text,
    is_visible,
    single_line,
)


class Place(msgspec.Struct, frozen=True):
    postcode: str


class Card(msgspec.Struct, frozen=True):
    name: str
    links: list[str] = []
    home: Place | None = None
    tags: dict[str, str] = {}
    count: int = 0


FORBIDDEN = {
    "NUL": "Nul\u0000Tester",
    "bell": "ding\u0007",
    "escape": "\u001b[31mred",
    "delete": "del\u007f",
    "C1 next line": "next\u0085line",
    "C1 CSI": "\u009b31m",
    "right-to-left override": "abc\u202egnp.exe",
    "left-to-right embedding": "\u202aabc",
    "first strong isolate": "\u2068isolated\u2069",
    "lone high surrogate": "x\ud800y",
    "lone low surrogate": "\udc00",
    "noncharacter FFFF": "a\uffff",
    "noncharacter FDD0": "\ufdd0",
}


@pytest.mark.parametrize("value", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_forbidden_characters_are_refused_wherever_they_are(value: str) -> None:
    for request, field in (
        (Card(name=value), "name"),
        (Card(name="ok", links=["https://a.example", value]), "links"),
        (Card(name="ok", home=Place(postcode=value)), "home.postcode"),
        (Card(name="ok", tags={"k": value}), "tags"),
    ):
        with pytest.raises(InvalidInput) as info:
            clean_request(request)
        assert info.value.field == field
        assert "not allowed" in info.value.message


def test_nfc_makes_one_value_of_composed_and_decomposed_text() -> None:
    decomposed = unicodedata.normalize("NFD", "Hélène Écoles")
    assert decomposed != "Hélène Écoles"
    cleaned = clean_request(Card(name=decomposed, home=Place(postcode="75011")))
    assert cleaned.name == "Hélène Écoles"
    assert cleaned.home == Place(postcode="75011")


def test_a_request_without_anything_to_change_is_the_same_object() -> None:
    card = Card(name="Léa", links=["https://x.example"], home=Place("75011"), tags={"a": "b"})
    assert clean_request(card) is card


def test_line_breaks_and_tabs_are_kept_and_cr_becomes_lf() -> None:
    assert check_text("a\r\nb\rc\td", "bio") == "a\nb\nc\td"


def test_size_is_bounded_before_anything_else() -> None:
    with pytest.raises(InvalidInput, match="too long"):
        check_text("x" * (MAX_TEXT + 1), "bio")
    with pytest.raises(InvalidInput, match="limited to 80"):
        single_line("é" * 81, "display_name", 80)


@pytest.mark.parametrize(
    "invisible", ["", "   ", "\u200b", "\u200b\u200c\u200d", "\ufeff", "\u00a0\u3000", "\u2060"]
)
def test_a_required_name_needs_a_visible_character(invisible: str) -> None:
    assert not is_visible(invisible)
    with pytest.raises(InvalidInput, match="display name is required") as info:
        single_line(invisible, "display_name", 80, required=True)
    assert info.value.field == "display_name"
    assert single_line(invisible, "business_name", 80) == ""


def test_single_line_folds_whitespace_and_free_text_keeps_paragraphs() -> None:
    assert single_line("  Cercle \n Voltaire\t ", "name", 120) == "Cercle Voltaire"
    assert free_text(" Bonjour  à tous \n\n\n\nDeuxième   ligne \n", "bio", 2000) == (
        "Bonjour à tous\n\nDeuxième ligne"
    )
    assert single_line("🧑‍🍳 Chef", "name", 20) == "🧑‍🍳 Chef"  # a joiner inside emoji is fine


@given(st.text(max_size=200))
def test_any_text_is_either_refused_or_clean_nfc(value: str) -> None:
    try:
        cleaned = check_text(value, "x")
    except InvalidInput:
        return
    assert unicodedata.is_normalized("NFC", cleaned)
    assert "\x00" not in cleaned and "\r" not in cleaned
    assert not any("\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069" for ch in cleaned)
