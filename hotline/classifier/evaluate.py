"""Accuracy figures for a labelled set: what ``hotline classify --eval`` prints and tests assert.

Top-3 matters as much as top-1: when the classifier is unsure the reporter picks from the top
three, so a right answer in second place still routes the ticket correctly.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hotline.classifier.corpus import Example
from hotline.classifier.model import Classification, Classifier


@dataclass(frozen=True)
class CategoryScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    n: int
    top1: float
    top3: float
    macro_f1: float
    per_category: dict[str, CategoryScore]
    #: confusion[true][predicted] = count (every category a row and a column, zeros included)
    confusion: dict[str, dict[str, int]]
    predictions: list[Classification] = field(repr=False, default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "top1": round(self.top1, 4),
            "top3": round(self.top3, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_category": {
                code: {"precision": round(s.precision, 4), "recall": round(s.recall, 4),
                       "f1": round(s.f1, 4), "support": s.support}
                for code, s in self.per_category.items()
            },
            "confusion": self.confusion,
        }


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def score(
    predictions: Sequence[Classification], labels: Sequence[str], codes: Sequence[str]
) -> EvalReport:
    """Metrics for predictions against gold labels.

    Macro-F1 averages over the categories that occur in the gold labels or the predictions (as
    scikit-learn does), so a category absent from a small set does not count as a zero.
    """
    if len(predictions) != len(labels):
        raise ValueError("predictions and labels differ in length")
    codes = list(codes) + sorted({*labels} - set(codes))
    confusion = {gold: dict.fromkeys(codes, 0) for gold in codes}
    top1 = top3 = 0
    for result, gold in zip(predictions, labels, strict=True):
        confusion[gold][result.category] = confusion[gold].get(result.category, 0) + 1
        top1 += result.category == gold
        top3 += gold in result.top(3)
    per_category: dict[str, CategoryScore] = {}
    for code in codes:
        tp = confusion[code].get(code, 0)
        support = sum(confusion[code].values())
        predicted = sum(row.get(code, 0) for row in confusion.values())
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall)
        per_category[code] = CategoryScore(precision, recall, f1, support)
    present = [code for code in codes
               if per_category[code].support or any(row.get(code) for row in confusion.values())]
    macro = _ratio(sum(per_category[c].f1 for c in present), len(present))
    n = len(labels)
    return EvalReport(n=n, top1=_ratio(top1, n), top3=_ratio(top3, n), macro_f1=macro,
                      per_category=per_category, confusion=confusion, predictions=list(predictions))


def evaluate(classifier: Classifier, examples: Sequence[Example]) -> EvalReport:
    """Classify ``examples`` in one batch and score them."""
    predictions = classifier.classify_many([text for text, _ in examples])
    return score(predictions, [label for _, label in examples], classifier.codes)


@dataclass(frozen=True)
class RoutingOutcome:
    """Where reports end up in the chat, given its confidence threshold.

    Above the threshold the ticket is filed under the top-1 category; below it the reporter picks
    from the top three (assumed to pick the right one when it is there) or taps "not sure", which
    sends the ticket to the coordinator's triage queue. "Right" means the right owner group: two
    categories of one group reach the same people.
    """

    n: int
    threshold: float
    #: confident and top-1 in the right owner group
    confident_right: float
    #: below the threshold and the right category among the top three (the reporter's pick)
    picked_right: float
    #: confident but the wrong owner group: a coordinator must reassign (days of SLA lost)
    confident_wrong: float
    #: below the threshold and the right category not offered: "not sure", to triage
    triage: float

    @property
    def routed_right(self) -> float:
        """Share reaching the right owner group with no coordinator involved."""
        return self.confident_right + self.picked_right

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "threshold": self.threshold,
                "routed_right": round(self.routed_right, 4),
                "confident_right": round(self.confident_right, 4),
                "picked_right": round(self.picked_right, 4),
                "confident_wrong": round(self.confident_wrong, 4),
                "triage": round(self.triage, 4)}


def routing(
    predictions: Sequence[Classification], labels: Sequence[str], group_of: Mapping[str, str],
    threshold: float,
) -> RoutingOutcome:
    """The routing outcome of ``predictions`` (``group_of`` maps a category to its owner group)."""
    counts = dict.fromkeys(("confident_right", "picked_right", "confident_wrong", "triage"), 0)
    for result, gold in zip(predictions, labels, strict=True):
        if result.confidence >= threshold:
            right = group_of.get(result.category, result.category) == group_of.get(gold, gold)
            counts["confident_right" if right else "confident_wrong"] += 1
        else:
            counts["picked_right" if gold in result.top(3) else "triage"] += 1
    n = len(labels)
    return RoutingOutcome(n=n, threshold=threshold,
                          **{key: _ratio(value, n) for key, value in counts.items()})


#: Confidence bins for the reliability table: the chat's threshold (0.55 by default) is an edge.
CALIBRATION_EDGES = (0.0, 0.4, 0.55, 0.7, 0.85, 0.95, 1.0)


def calibration(
    predictions: Sequence[Classification], labels: Sequence[str],
    edges: Sequence[float] = CALIBRATION_EDGES,
) -> tuple[float, list[tuple[float, float, int, float, float]]]:
    """Expected calibration error and the reliability table (bin low, bin high, count, mean
    confidence, accuracy): "0.9" should be right about nine times in ten, or the threshold lies."""
    rows = []
    error = 0.0
    n = len(labels)
    for low, high in itertools.pairwise(edges):
        last = high == edges[-1]
        members = [(p.confidence, p.category == gold) for p, gold in zip(predictions, labels, strict=True)
                   if low <= p.confidence and (p.confidence < high or (last and p.confidence <= high))]
        if not members:
            continue
        confidence = sum(c for c, _ in members) / len(members)
        accuracy = sum(ok for _, ok in members) / len(members)
        error += len(members) / n * abs(confidence - accuracy)
        rows.append((low, high, len(members), confidence, accuracy))
    return error, rows
