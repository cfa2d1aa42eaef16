"""``hotline classify``: classify one report, evaluate on a labelled file, or retrain on corrections.

Errors the user can cause (missing file, bad JSON line, unknown label, nothing to do) are one
sentence on stderr and exit code 1, whether the command runs under the main app or on its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from hotline.config import Settings
from hotline.errors import HotlineError
from hotline.taxonomy import Taxonomy

_out = Console(highlight=False)


def classify(
    # Optional[...] rather than "X | None": the signature the integrator registers, as agreed.
    text: Optional[str] = typer.Argument(None, help="the report text to classify"),  # noqa: UP045
    eval_file: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--eval", help="JSONL file of {\"text\", \"label\"} lines: print accuracy figures"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    retrain: bool = typer.Option(
        False, "--retrain", help="train on the corpus plus coordinator corrections and cache it"
    ),
) -> None:
    """Classify a report into a category, or evaluate the classifier on a labelled file."""
    try:
        _run(text, eval_file, as_json, retrain)
    except HotlineError as exc:
        # Plain print: Rich would wrap a long path over several lines.
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _run(text: str | None, eval_file: Path | None, as_json: bool, retrain: bool) -> None:
    from hotline.classifier import evaluate, load_classifier
    from hotline.classifier.corpus import read_labelled_file
    from hotline.classifier.evaluate import routing
    from hotline.config import load_settings
    from hotline.errors import InvalidInput
    from hotline.taxonomy import load_taxonomy

    if text is not None and eval_file is not None:
        raise InvalidInput("give either a TEXT to classify or --eval FILE, not both")
    if text is None and eval_file is None and not retrain:
        raise InvalidInput("nothing to do: give a TEXT to classify, --eval FILE or --retrain")
    settings = load_settings()
    taxonomy = load_taxonomy(settings.taxonomy_file)
    # Read the file before training, so a bad file fails at once.
    examples = read_labelled_file(eval_file, taxonomy.codes) if eval_file is not None else None

    output: dict[str, Any] = {}
    if retrain:
        classifier, summary = _retrain(settings, taxonomy)
        output["retrained"] = summary
        if not as_json:
            _print_retrain(summary)
    else:
        classifier = load_classifier(cache_dir=settings.classifier_cache_dir, taxonomy=taxonomy)

    if examples is not None:
        report = evaluate(classifier, examples)
        output.update(report.as_dict())
        # What the chat would do with these reports at its threshold (an added key: the rest of
        # the output is unchanged for scripts that read it).
        output["routing"] = routing(
            report.predictions, [label for _, label in examples],
            {code: taxonomy.category(code).group for code in taxonomy.codes},
            settings.classifier_threshold).as_dict()
        if not as_json:
            _print_report(output)
    elif text is not None:
        result = classifier.classify(text)
        category = taxonomy.category(result.category)
        output.update({
            "category": result.category,
            "name_vi": category.name_vi,
            "name_en": category.name_en,
            "confidence": round(result.confidence, 4),
            "confident": result.confidence >= settings.classifier_threshold,
            "threshold": settings.classifier_threshold,
            "candidates": [{"category": code, "score": round(score, 4)}
                           for code, score in result.candidates],
        })
        if not as_json:
            _print_result(output, taxonomy)
    if as_json:
        print(json.dumps(output, ensure_ascii=False))


def _retrain(settings: Settings, taxonomy: Taxonomy) -> tuple[Any, dict[str, Any]]:
    from hotline.classifier import retrain
    from hotline.classifier.model import training_examples
    from hotline.services.corrections import load_corrections

    corrections = asyncio.run(load_corrections(settings))
    usable = [(t, label) for t, label in corrections if label in taxonomy.categories]
    classifier, path = retrain(usable, settings.classifier_cache_dir, taxonomy)
    examples, _ = training_examples(usable, taxonomy)
    summary = {
        "examples": len(examples),
        "corrections": len(usable),
        "corrections_skipped": len(corrections) - len(usable),
        "cache": str(path) if path is not None else None,
    }
    return classifier, summary


def _print_retrain(summary: dict[str, Any]) -> None:
    _out.print(f"retrained on {summary['examples']} examples "
               f"(including {summary['corrections']} coordinator corrections)")
    if summary["corrections_skipped"]:
        _out.print(f"skipped {summary['corrections_skipped']} corrections with a category "
                   "that is not in the taxonomy")
    if summary["cache"]:
        _out.print(f"model cached at {summary['cache']}")
    else:
        print("note: HOTLINE_CLASSIFIER_CACHE_DIR is not set, so the retrained model is not kept; "
              "the bot trains its own on start", file=sys.stderr)


def _print_result(out: dict[str, Any], taxonomy: Taxonomy) -> None:
    verdict = "confident" if out["confident"] else f"unsure (below {out['threshold']:.2f}: offer top 3)"
    _out.print(f"[bold]{out['category']}[/] — {out['name_vi']} / {out['name_en']}")
    _out.print(f"confidence {out['confidence']:.2f}, {verdict}")
    table = Table(title="top 3")
    for column in ("#", "code", "Vietnamese", "English", "score"):
        table.add_column(column)
    for rank, candidate in enumerate(out["candidates"][:3], start=1):
        category = taxonomy.category(candidate["category"])
        table.add_row(str(rank), category.code, category.name_vi, category.name_en,
                      f"{candidate['score']:.3f}")
    _out.print(table)


def _print_report(report: dict[str, Any]) -> None:
    _out.print(f"{report['n']} examples: top-1 accuracy {report['top1']:.3f}, "
               f"top-3 accuracy {report['top3']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    table = Table(title="per category")
    for column in ("category", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for code, s in report["per_category"].items():
        table.add_row(code, f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1']:.2f}",
                      str(s["support"]))
    _out.print(table)
    codes = list(report["confusion"])
    # Numbered columns keep eleven categories readable in an 80-column terminal.
    confusion = Table(title="confusion (rows: true category, columns: predicted, by number)")
    confusion.add_column("true")
    for number in range(1, len(codes) + 1):
        confusion.add_column(str(number), justify="right")
    for number, gold in enumerate(codes, start=1):
        row = report["confusion"][gold]
        confusion.add_row(f"{number} {gold}", *(str(row[p]) if row[p] else "." for p in codes))
    _out.print(confusion)
    if "routing" in report:
        r = report["routing"]
        _out.print(f"routing at threshold {r['threshold']:.2f}: {r['routed_right']:.1%} reach the right "
                   f"owner group without a coordinator ({r['confident_right']:.1%} confident, "
                   f"{r['picked_right']:.1%} picked from the top three); {r['confident_wrong']:.1%} "
                   f"confidently misrouted; {r['triage']:.1%} to triage")
