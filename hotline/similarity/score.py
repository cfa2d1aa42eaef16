"""How alike two reports are, from 0 to 1 -- the one rule behind suggestions, ``/dup`` scores
and ``hotline similar --eval``.

Three signals, each robust to something different:

* **words** -- canonical words and word pairs (``text.terms``), weighted by how rare they are in
  the bundled report corpus, so "nghị định" or "doanh nghiệp" count less than "kho bạc" or
  "hóa đơn điện tử". Compared both as a cosine and as the *coverage* of the shorter report
  by the longer, so a one-line report still matches its long version.
* **characters** -- the 3- and 4-letter pieces of each canonical word (padded with spaces,
  as scikit-learn's ``char_wb``), compared as sets: they survive typos and run-together or
  split syllables. Python sets rather than a vectoriser: re-scoring the candidates of a search
  costs well under a millisecond each.
* **anchors** -- decree and law numbers, years: two reports naming different instruments are
  different problems however alike their wording; a shared number is strong evidence.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources

from hotline.similarity.text import anchors, canonical_words, terms, terms_of

#: Weights of the signals and the anchor rule, chosen on the tuning split of the pair set
#: (``tests/data/similar_pairs_tune.jsonl``), never on the held-out split.
WORD_WEIGHT = 0.45
COVERAGE_WEIGHT = 0.3
CHAR_WEIGHT = 0.2
ANCHOR_BONUS = 0.15
ANCHOR_PENALTY = 0.5



def char_grams(words: list[str]) -> frozenset[str]:
    """3- and 4-letter pieces of each word, padded with a space on both sides."""
    grams: set[str] = set()
    for word in words:
        padded = f" {word} "
        for size in (3, 4):
            grams.update(padded[i:i + size] for i in range(len(padded) - size + 1))
    return frozenset(grams)


@dataclass(frozen=True, slots=True)
class Profile:
    """A report reduced to what ``similarity`` compares; built once per text."""

    weights: dict[str, float]
    norm: float
    chars: frozenset[str]
    anchors: frozenset[str]


@cache
def _idf() -> tuple[dict[str, float], float]:
    """Inverse document frequency of terms in the bundled corpus of reports (no I/O beyond
    the package's own data file; computed once per process, a few milliseconds)."""
    lines = resources.files("hotline.data").joinpath("corpus/train.jsonl").read_text("utf-8")
    docs = [json.loads(line)["text"] for line in lines.splitlines() if line.strip()]
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(set(terms(doc)))
    n = len(docs)
    table = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
    return table, math.log(n + 1) + 1.0


def term_weight(term: str) -> float:
    """How much a shared term says: rarer in the corpus weighs more; word pairs a little more."""
    idf, unseen = _idf()
    return idf.get(term, unseen) * (1.2 if "_" in term else 1.0)


def profile_of(words: list[str], found_anchors: frozenset[str], *, chars: bool = True) -> Profile:
    """The profile of a canonical text (what the index stores), without re-normalising.
    ``chars=False`` leaves the character pieces out (see ``upper_bound``)."""
    weights = {t: term_weight(t) for t in terms_of(words) if not t.startswith("#")}
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return Profile(weights, norm, char_grams(words) if chars else frozenset(), found_anchors)


def profile(text: str) -> Profile:
    return profile_of(canonical_words(text), anchors(text))


def profiles(texts: list[str]) -> list[Profile]:
    return [profile(t) for t in texts]


def _words_part(a: Profile, b: Profile) -> float:
    small, large = (a, b) if a.norm <= b.norm else (b, a)
    shared = sum(w * w for t, w in small.weights.items() if t in large.weights)
    dot = sum(w * large.weights[t] for t, w in small.weights.items() if t in large.weights)
    cosine = dot / (a.norm * b.norm)
    coverage = shared / (small.norm * small.norm)
    return WORD_WEIGHT * cosine + COVERAGE_WEIGHT * coverage


def _final(a: Profile, b: Profile, score: float) -> float:
    if a.anchors and b.anchors:
        score = score + ANCHOR_BONUS if a.anchors & b.anchors else score * ANCHOR_PENALTY
    return min(max(score, 0.0), 1.0)


def similarity(a: Profile, b: Profile) -> float:
    """0 (nothing shared) .. 1 (same problem, same words)."""
    if not a.weights or not b.weights:
        return 0.0
    chars = (len(a.chars & b.chars) / math.sqrt(len(a.chars) * len(b.chars))
             if a.chars and b.chars else 0.0)
    return _final(a, b, _words_part(a, b) + CHAR_WEIGHT * chars)


def upper_bound(a: Profile, b: Profile) -> float:
    """``similarity(a, b)`` can be no higher than this (its character part taken as perfect):
    a search skips the character pieces of a candidate whose bound is below the threshold.
    Needs no character pieces."""
    if not a.weights or not b.weights:
        return 0.0
    return _final(a, b, _words_part(a, b) + CHAR_WEIGHT)


def similarity_of(a: str, b: str) -> float:
    return similarity(profile(a), profile(b))
