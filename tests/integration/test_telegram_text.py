"""split_message: pieces fit, stay balanced, break on lines, lose nothing visible.

Pure functions, but they decide whether Telegram accepts our messages, so they sit with the
Telegram tests; the property test checks the guarantees on arbitrary nested markup.
"""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.text import split_message, strip_tags, utf16_length
from tests.fakes.telegram_api import ApiError, render_html

TAG = re.compile(r"<[^<>]+>")


def visible(markup: str) -> str:
    return html.unescape(TAG.sub("", markup))


def test_short_text_is_untouched_and_empty_gives_nothing() -> None:
    assert split_message("<b>ngắn</b>", 100) == ["<b>ngắn</b>"]
    assert split_message("", 100) == []


def test_prefers_line_then_space_then_anywhere() -> None:
    assert split_message("aaaa\nbbbb cccc", 10) == ["aaaa", "bbbb cccc"]
    assert split_message("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]
    assert split_message("abcdefghijkl", 5) == ["abcde", "fghij", "kl"]


def test_never_cuts_inside_a_tag_or_entity_and_reopens_tags() -> None:
    text = '<a href="https://x.example/very/long">link text here</a> &amp;&amp;&amp; tail'
    pieces = split_message(text, 48)
    for piece in pieces:
        assert len(piece) <= 48
        render_html(piece)  # Telegram's parser accepts each piece on its own
    assert pieces[0].startswith('<a href="https://x.example/very/long">')
    assert "".join(visible(p) for p in pieces).replace(" ", "") == visible(text).replace(" ", "")


def test_counts_utf16_units_like_telegram() -> None:
    assert utf16_length("đ😀") == 3  # an emoji is two UTF-16 code units
    pieces = split_message("😀" * 10, 8)
    assert [utf16_length(p) for p in pieces] == [8, 8, 4]


def test_plain_mode_treats_angle_brackets_as_text() -> None:
    assert split_message("a <b> c d", 5, html=False) == ["a <b>", "c d"]


def test_strip_tags_keeps_line_breaks() -> None:
    assert strip_tags("<b>Danh sách</b>\n- A &amp; B\n- <i>C</i>") == "Danh sách\n- A & B\n- C"


def test_impossible_limit_is_an_error() -> None:
    with pytest.raises(ValueError, match="open tags"):
        split_message('<a href="' + "x" * 50 + '">' + "y" * 100 + "</a>", 40)


words = st.sampled_from(["HL-2026-000123", "Giấy phép", "đất", "&amp;", "😀", "x" * 30, " ", "\n", "\n\n"])


@st.composite
def markup(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        if depth < 3 and draw(st.booleans()):
            tag = draw(st.sampled_from(["b", "i", "u", "s", "code", "blockquote", "a"]))
            opening = (
                f'<a href="https://h.example/{draw(st.integers(0, 999))}">' if tag == "a" else f"<{tag}>"
            )
            parts.append(f"{opening}{draw(markup(depth + 1))}</{tag}>")
        else:
            parts.append(draw(words))
    return "".join(parts)


# Limits from 200: four nested links reopened at a cut take ~150 characters by themselves, and a
# piece must still fit one word (the real limit is 4096).
@settings(max_examples=60, deadline=None)
@given(body=st.lists(markup(), min_size=1, max_size=12).map("\n".join), limit=st.integers(200, 600))
def test_split_properties(body: str, limit: int) -> None:
    pieces = split_message(body, limit)
    for piece in pieces:
        assert utf16_length(piece) <= limit
        try:
            render_html(piece)
        except ApiError as error:  # pragma: no cover - the message is the diagnosis
            raise AssertionError(f"{error.description}: {piece!r}") from None
    # Only whitespace at the cuts may go missing.
    squash = re.compile(r"\s+")
    assert squash.sub("", "".join(visible(p) for p in pieces)) == squash.sub("", visible(body))
