"""Why the classifier generalises (or not): accuracy by writer style, learning curves, confusions,
and the routing outcome, on the shared dev set and on our fresh dev set.

- Leave-one-style-out cross-validation on the training corpus: every row of the corpus carries a
  writer style (``style`` in the JSONL; the first-generation rows, which have none, are "short
  Vietnamese", "short unaccented" or "short English"). Each style in turn is held out entirely and
  the model is trained on the rest: a style that scores low is one the model cannot yet read
  unless it has seen it, which is what an unseen writer does to it.
- Learning curve: the fresh dev set's top-1 when training on a seeded share of the corpus; a curve
  still rising at 100 % says more (varied) data will help.
- Fresh dev set (``tests/data/classifier/fresh_dev.jsonl``): written for this study in styles the
  corpus lacked and never trained on; figures per category, per style, with and without
  diacritics, plus the routing outcome at the chat's threshold.

Usage: python bench/classifier_study.py [--quick] [--json FILE]   (prints tables; not part of pytest)
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, pop_json_arg, print_table
from hotline.classifier import evaluate, train_classifier
from hotline.classifier.corpus import CORPUS_RESOURCE, Example
from hotline.classifier.evaluate import EvalReport, calibration, routing
from hotline.classifier.fold import fold, strip_diacritics
from hotline.config import Settings
from hotline.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
SHARED_DEV = ROOT.parent / "shared" / "eval" / "blockers_dev.jsonl"
FRESH_DEV = ROOT / "tests" / "data" / "classifier" / "fresh_dev.jsonl"
_ENGLISH = {"is", "are", "was", "our", "we", "not", "of", "and", "for", "has", "have", "with",
            "there", "please", "this", "but", "been", "from", "they", "the", "can", "does"}

Row = tuple[str, str, str]  # text, label, style


def _style_of_unmarked(text: str) -> str:
    if text != strip_diacritics(text):
        return "short-vi"
    words = set(fold(text, expand=False).split())
    return "short-en" if len(words & _ENGLISH) >= 2 else "short-plain"


def read_rows(text: str) -> list[Row]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append((row["text"], row["label"], row.get("style") or _style_of_unmarked(row["text"])))
    return rows


def corpus_rows() -> list[Row]:
    return read_rows(resources.files("hotline.data").joinpath(CORPUS_RESOURCE).read_text("utf-8"))


def _examples(rows: Sequence[Row]) -> list[Example]:
    return [(text, label) for text, label, _ in rows]


def per_category_table(title: str, reports: dict[str, EvalReport]) -> None:
    names = list(reports)
    codes = list(next(iter(reports.values())).per_category)
    header = ["category", "support"] + [f"{name} {m}" for name in names for m in ("P", "R", "F1")]
    body = []
    for code in codes:
        first = reports[names[0]].per_category[code]
        if not first.support and not any(r.confusion[c].get(code) for r in reports.values()
                                         for c in r.confusion):
            continue
        cells: list[object] = [code, first.support]
        for name in names:
            s = reports[name].per_category[code]
            cells += [f"{s.precision:.2f}", f"{s.recall:.2f}", f"{s.f1:.2f}"]
        body.append(cells)
    body.append(["ALL top-1 / top-3 / macro-F1", reports[names[0]].n]
                + [x for r in reports.values() for x in (f"{r.top1:.3f}", f"{r.top3:.3f}",
                                                          f"{r.macro_f1:.3f}")])
    print_table(title, header, body)


def confusions(report: EvalReport, top: int = 10) -> list[tuple[str, str, int]]:
    pairs = [(gold, pred, count) for gold, row in report.confusion.items()
             for pred, count in row.items() if gold != pred and count]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))[:top]


def main() -> None:
    json_path = pop_json_arg()
    quick = "--quick" in sys.argv
    taxonomy = load_taxonomy()
    threshold = Settings().classifier_threshold
    group_of = {code: taxonomy.category(code).group for code in taxonomy.codes}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {machine()}; load average {load:.2f}")
    figures: dict[str, object] = {}

    rows = corpus_rows()
    styles = Counter(style for _, _, style in rows)
    print(f"corpus: {len(rows)} examples; styles {dict(sorted(styles.items()))}")

    started = time.perf_counter()
    model = train_classifier()
    print(f"trained in {time.perf_counter() - started:.2f} s; temperature {model.temperature:.3f}")

    # --- both dev sets: per category, diacritics, style, routing ---------------------------------
    sets: dict[str, list[Row]] = {}
    if SHARED_DEV.is_file():
        sets["shared dev"] = read_rows(SHARED_DEV.read_text("utf-8"))
    sets["fresh dev"] = read_rows(FRESH_DEV.read_text("utf-8"))
    for name, dev in sets.items():
        as_typed = _examples(dev)
        plain = [(strip_diacritics(t), label) for t, label in as_typed]
        reports = {"as typed": evaluate(model, as_typed), "no diacritics": evaluate(model, plain)}
        per_category_table(f"{name} ({len(dev)} reports): per category", reports)
        by_style: dict[str, list[bool]] = defaultdict(list)
        for (_, gold, style), result in zip(dev, reports["as typed"].predictions, strict=True):
            by_style[style].append(result.category == gold)
        print_table(f"{name}: top-1 by writer style", ["style", "n", "top-1"],
                    [[s, len(v), f"{sum(v) / len(v):.3f}"] for s, v in sorted(by_style.items())])
        route = routing(reports["as typed"].predictions, [g for _, g in as_typed], group_of, threshold)
        route_plain = routing(reports["no diacritics"].predictions, [g for _, g in plain], group_of,
                              threshold)
        print_table(f"{name}: routing outcome at threshold {threshold}",
                    ["set", "routed right, no coordinator", "confident & right group",
                     "reporter's pick right", "confident & wrong group", "to triage"],
                    [[label, *(f"{r.as_dict()[k]:.3f}" for k in ("routed_right", "confident_right",
                                                                "picked_right", "confident_wrong",
                                                                "triage"))]
                     for label, r in (("as typed", route), ("no diacritics", route_plain))])
        ece, reliability = calibration(reports["as typed"].predictions, [g for _, g in as_typed])
        print_table(f"{name}: calibration (expected calibration error {ece:.3f})",
                    ["confidence", "n", "mean confidence", "accuracy"],
                    [[f"{low:.2f}-{high:.2f}", count, f"{conf:.3f}", f"{acc:.3f}"]
                     for low, high, count, conf, acc in reliability])
        print("most frequent confusions (true -> predicted):",
              ", ".join(f"{g}->{p} {c}" for g, p, c in confusions(reports["as typed"])))
        figures[name] = {"as_typed": reports["as typed"].as_dict(),
                         "no_diacritics": reports["no diacritics"].as_dict(),
                         "by_style": {s: sum(v) / len(v) for s, v in by_style.items()},
                         "routing": route.as_dict(), "routing_no_diacritics": route_plain.as_dict(),
                         "ece": ece}
    fresh = _examples(sets["fresh dev"])

    # --- leave one writer style out (cross-validation on the corpus) ----------------------------
    cv_rows = []
    for style in sorted(styles):
        train = [r for r in rows if r[2] != style]
        test = [r for r in rows if r[2] == style]
        if len({label for _, label, _ in train}) < 2:
            continue
        held = evaluate(train_classifier(corpus=_examples(train)), _examples(test))
        cv_rows.append([style, len(test), f"{held.top1:.3f}", f"{held.top3:.3f}",
                        f"{held.macro_f1:.3f}"])
    print_table("leave-one-writer-style-out CV on the corpus", ["held-out style", "n", "top-1",
                                                               "top-3", "macro-F1"], cv_rows)
    figures["style_cv"] = {r[0]: float(r[2]) for r in cv_rows}

    # --- coordinator corrections: do they help on the next similar report? ---------------------
    # A style the model has not seen stands for a new kind of report: the coordinator corrects
    # the misrouted ones among the first half (as they arrive), the second half is "next week".
    corr_rows = []
    for style in ("indirect", "confounder", "chat"):
        held = [r for r in rows if r[2] == style]
        if len(held) < 10:
            continue
        train = _examples([r for r in rows if r[2] != style])
        first, later = _examples(held[0::2]), _examples(held[1::2])
        before = train_classifier(corpus=train)
        corrections = [(t, label) for (t, label), result in
                       zip(first, before.classify_many([t for t, _ in first]), strict=True)
                       if result.category != label]
        after = train_classifier(corrections, corpus=train)
        b_later, a_later = evaluate(before, later), evaluate(after, later)
        b_fresh, a_fresh = evaluate(before, fresh), evaluate(after, fresh)
        corr_rows.append([style, len(corrections), len(later), f"{b_later.top1:.3f}",
                          f"{a_later.top1:.3f}", f"{b_fresh.top1:.3f}", f"{a_fresh.top1:.3f}"])
    print_table("corrections: a new style, the first half's misroutes corrected, the second half "
                "scored", ["style", "corrections", "next reports", "top-1 before", "top-1 after",
                           "fresh dev before", "fresh dev after"], corr_rows)
    figures["corrections"] = corr_rows

    # --- learning curve ----------------------------------------------------------------------------
    curve = []
    shares = (0.25, 0.5, 1.0) if quick else (0.125, 0.25, 0.5, 0.75, 1.0)
    for share in shares:
        rng = random.Random(11)
        part = [r for r in rows if rng.random() < share] if share < 1 else rows
        report = evaluate(train_classifier(corpus=_examples(part)), fresh)
        curve.append([f"{share:.0%}", len(part), f"{report.top1:.3f}", f"{report.top3:.3f}"])
    print_table("learning curve (fresh dev set)", ["share of corpus", "examples", "top-1", "top-3"],
                curve)
    figures["learning_curve"] = {r[1]: float(r[2]) for r in curve}

    if json_path is not None:
        json_path.write_text(json.dumps(figures, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
