"""Score a labelled pair set: how well ``similarity`` separates the same problem in other words
from different problems, at the threshold the chat uses for suggestions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import roc_auc_score

from hotline.errors import InvalidInput
from hotline.similarity.score import profiles, similarity


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool


@dataclass(frozen=True)
class Evaluation:
    n: int
    auc: float
    threshold: float
    precision: float
    recall: float

    def to_json(self) -> dict[str, float | int]:
        return {"n": self.n, "auc": round(self.auc, 4), "threshold": self.threshold,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4)}


def read_pairs(path: Path) -> list[Pair]:
    """JSONL lines ``{"a": text, "b": text, "same": bool}``; a bad line is named, not skipped."""
    pairs: list[Pair] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", key="error.file_unreadable",
                           path=str(path)) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pair = Pair(str(row["a"]), str(row["b"]), row["same"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInput(f"{path}:{number}: expected {{\"a\", \"b\", \"same\"}}",
                               key="error.bad_pair_line", path=str(path), line=number) from None
        if not isinstance(pair.same, bool):
            raise InvalidInput(f"{path}:{number}: 'same' must be true or false",
                               key="error.bad_pair_line", path=str(path), line=number)
        pairs.append(pair)
    if not pairs:
        raise InvalidInput(f"{path} has no pairs", key="error.no_pairs", path=str(path))
    return pairs


def scores(pairs: list[Pair]) -> list[float]:
    left = profiles([p.a for p in pairs])
    right = profiles([p.b for p in pairs])
    return [similarity(x, y) for x, y in zip(left, right, strict=True)]


def evaluate(pairs: list[Pair], threshold: float) -> Evaluation:
    got = scores(pairs)
    labels = [p.same for p in pairs]
    predicted = [s >= threshold for s in got]
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and p)
    positives = sum(labels)
    auc = roc_auc_score(labels, got) if 0 < positives < len(labels) else float("nan")
    return Evaluation(
        n=len(pairs), auc=float(auc), threshold=threshold,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / positives if positives else 0.0,
    )
