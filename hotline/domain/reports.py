"""What counts as a report, and as a worded answer: the one rule every chat entry point uses.

A ticket becomes a number in the programme's results, so only text that actually describes
something may start one. The rule is about letters and words, not a language: Vietnamese with or
without diacritics and English pass alike ("Chưa có nghị định hướng dẫn Luật Dữ liệu",
"Chua co nghi dinh huong dan Luat Du lieu", "No decree guides the Data Law yet"), while
digits, emoji, "ok", a stray menu number or one repeated word do not.

Plain Python, no I/O: handlers ask ``is_report`` / ``has_words`` and choose what to answer.
"""

from __future__ import annotations

import unicodedata

#: A report needs this many letters in total ...
MIN_REPORT_LETTERS = 12
#: ... in at least this many words of two or more letters ...
MIN_REPORT_WORDS = 3
#: ... of which at least this many differ ("test test test" is not a description) ...
MIN_DISTINCT_WORDS = 2
#: ... and letters must make up this share of what is not blank (not a row of numbers).
MIN_LETTER_SHARE = 0.5

#: A worded answer (a reason, a reply, an organisation's name) needs this many letters.
MIN_ANSWER_LETTERS = 2

#: Shown to somebody whose message is not a report, in ``engine.not_a_report``.
EXAMPLE_VI = "Chưa có nghị định hướng dẫn Luật Dữ liệu nên chúng tôi chưa thể chia sẻ dữ liệu."
EXAMPLE_EN = "There is no decree guiding the Data Law yet, so we cannot share our data."


def fold(text: str) -> str:
    """Lower case without diacritics (đ becomes d): how labels and words are compared."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Runs of letters (digits, punctuation and emoji separate words and are not part of one)."""
    found: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch.isalpha():
            current.append(ch)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def letter_count(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def is_report(text: str | None) -> bool:
    """Whether ``text`` describes something, so that it may become (or open) a ticket."""
    if not text:
        return False
    letters = letter_count(text)
    if letters < MIN_REPORT_LETTERS:
        return False
    long_words = [fold(w) for w in words(text) if len(w) >= 2]
    if len(long_words) < MIN_REPORT_WORDS or len(set(long_words)) < MIN_DISTINCT_WORDS:
        return False
    visible = sum(1 for ch in text if not ch.isspace())
    return letters >= MIN_LETTER_SHARE * visible


def has_words(text: str | None) -> bool:
    """Whether ``text`` is worded at all (a reply, a reason, a name): "7" and "👍" are not."""
    return bool(text) and letter_count(text or "") >= MIN_ANSWER_LETTERS
