"""Canonical form of a report for comparison: why two wordings of one problem meet.

Reporters write Vietnamese with or without diacritics, in English, with abbreviations
("NĐ", "CSDL", "BHXH") and typos. The canonical form is lower-case ASCII Vietnamese: diacritics
are removed, and English domain terms and acronyms are replaced by their Vietnamese phrase
from ``glossary.toml`` (longest phrase first), so "Decree" and "nghị định" share tokens.
Identifiers with digits ("13/2023/NĐ-CP", "Law 20/2023") are kept whole as *anchors*: two
reports about different decrees of the same kind are different problems.
"""

from __future__ import annotations

import itertools
import re
import tomllib
import unicodedata
from functools import cache
from importlib import resources

_WORD = re.compile(r"[a-z0-9]+")
#: A number-bearing identifier such as 13/2023/nd-cp, 20/2023/qh15, 2023 (kept before splitting).
_ANCHOR = re.compile(r"\b\d+(?:[/.-]\d+)*(?:[/-][a-z]+(?:-[a-z]+)*\d*)?\b")

#: Words that carry no problem content in either language (already without diacritics).
STOPWORDS = frozenset("""
a and are as at be been but by for from has have in into is it its of on or our that the
their there this was we were will with which who not yes please very also than
could should would might does did these those they them us you your my
va voi cua cac nhung mot la thi de cho nay khi nhu trong ngoai ra vao
duoc bi da se rat lai nao gi toi em xin oi nhe roi luon hay hoac
""".split())


def fold(text: str) -> str:
    """Lower-case, without diacritics (đ → d): how most reporters type on a phone anyway."""
    text = unicodedata.normalize("NFD", text.lower().replace("đ", "d").replace("Đ", "d"))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


@cache
def glossary() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Phrase (as folded words) → canonical words, from the bundled glossary."""
    raw = tomllib.loads(resources.files("hotline.similarity").joinpath("glossary.toml").read_text("utf-8"))
    return {tuple(_WORD.findall(fold(k))): tuple(_WORD.findall(fold(v)))
            for k, v in raw["terms"].items()}


@cache
def _longest_phrase() -> int:
    return max(len(k) for k in glossary())


def _map_phrases(words: list[str]) -> list[str]:
    """Replace glossary phrases, longest match first, left to right."""
    table, longest = glossary(), _longest_phrase()
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            hit = table.get(tuple(words[i:i + size]))
            if hit is not None:
                out.extend(hit)
                i += size
                break
        else:
            out.extend(_inflected(words[i], table))
            i += 1
    return out


def _inflected(word: str, table: dict[tuple[str, ...], tuple[str, ...]]) -> tuple[str, ...]:
    """An English plural or past form of a glossary word ("licences", "delayed") maps like it."""
    for cut in ("s", "es", "ed", "d", "ing"):
        if len(word) > len(cut) + 2 and word.endswith(cut):
            hit = table.get((word[: -len(cut)],))
            if hit is not None:
                return hit
    return (word,)


def anchors(text: str) -> frozenset[str]:
    """Number-bearing identifiers (decree numbers, years, article numbers), normalised."""
    folded = fold(text)
    found = set()
    for match in _ANCHOR.finditer(folded):
        token = match.group(0)
        digits = re.findall(r"\d+", token)
        # "13/2023/nd-cp" and "13/2023" name the same decree: compare the digits.
        found.add("/".join(d.lstrip("0") or "0" for d in digits))
    return frozenset(found)


def canonical_words(text: str) -> list[str]:
    """Content words of the canonical form (glossary applied, stopwords and digits removed)."""
    words = _map_phrases(_WORD.findall(fold(text)))
    return [w for w in words if w not in STOPWORDS and not w.isdigit()]


def canonical(text: str) -> str:
    """The canonical text, one space between words (stored for re-scoring candidates)."""
    return " ".join(canonical_words(text))


def terms(text: str) -> list[str]:
    """Index terms: canonical words and adjacent pairs (Vietnamese meaning sits in two-syllable
    compounds: "du lieu", "nghi dinh"), plus anchors as ``#13/2023``; each once, in order."""
    return terms_of(canonical_words(text), anchors(text))


def terms_of(words: list[str], found_anchors: frozenset[str] = frozenset()) -> list[str]:
    """``terms`` from an already canonical text (a stored index document)."""
    seen: dict[str, None] = {}
    for w in words:
        seen.setdefault(w)
    for a, b in itertools.pairwise(words):
        seen.setdefault(f"{a}_{b}")
    for anchor in sorted(found_anchors):
        seen.setdefault(f"#{anchor}")
    return list(seen)
