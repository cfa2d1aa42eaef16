"""The main ask of a report: the part after "but" and the sentences that ask for something.

Long reports often list what already works ("we have the budget, the network is ready, staff are
trained") before the one thing that does not ("but the Treasury refuses to pay"). A bag of words
weighs every topic alike, so such a report drifts towards whatever it mentions most. Repeating the
main ask once more in the features (``features_text``) tilts the balance towards it without
throwing the rest away — short reports, which have no such structure, are left as they are.
"""

from __future__ import annotations

import re

from hotline.classifier.fold import MAX_CHARS, fold

#: Sentence ends (folding drops punctuation, so sentences are cut before folding).
_SENTENCE = re.compile(r"[.!?;\n]+(?:\s|$)|[!?;\n]+")
#: After one of these, the report turns from context to its problem (folded, whole words).
_CONTRAST = re.compile(
    r"\b(?:nhung|tuy nhien|tuy vay|tuy the|ngat noi|but|however|although|though)\b")
#: A sentence holding one of these states the ask or names the problem outright.
_ASK = re.compile(
    r"\b(?:de nghi|kien nghi|de xuat|mong|xin|can ho tro|can duoc|vuong mac|kho khan|van de|"
    r"cap bach|duy nhat|chu yeu|request|propose|please|we need|we ask|main problem|"
    r"only problem|the problem|the issue)\b")
#: A report of fewer words (as typed, split on white space) has no context to look past.
MIN_WORDS = 18


def main_ask(text: str | None) -> str:
    """The folded words of the report's main ask, or ``""`` when it has no separate one."""
    if not text:
        return ""
    raw = text[:MAX_CHARS]
    if len(raw.split(None, MIN_WORDS - 1)) < MIN_WORDS:  # most chat messages: no work at all
        return ""
    sentences = [s for s in (fold(part) for part in _SENTENCE.split(raw)) if s]
    parts: list[str] = []
    for sentence in sentences:
        turns = list(_CONTRAST.finditer(sentence))
        if turns:
            tail = sentence[turns[-1].end():].strip()
            parts.append(tail)
        elif _ASK.search(sentence):
            parts.append(sentence)
    focus = " ".join(p for p in parts if p)
    return "" if focus == " ".join(sentences) else focus


def features_text(text: str | None, folded: str) -> str:
    """What the featuriser reads: the folded report, then its main ask once more."""
    ask = main_ask(text)
    return f"{folded} {ask}" if ask else folded
