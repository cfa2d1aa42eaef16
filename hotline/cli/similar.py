"""``hotline similar``: the open and recently resolved tickets nearest a text, the index
rebuild for databases older than it, and the pair-set evaluation behind the chat's threshold."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from hotline.cli.common import console, opened_app, run_async
from hotline.config import load_settings
from hotline.errors import HotlineError, InvalidInput


def similar(
    text: Optional[str] = typer.Argument(None, help="a report text: print the nearest tickets"),  # noqa: UP045
    eval_file: Optional[Path] = typer.Option(  # noqa: UP045
        None, "--eval",
        help='JSONL file of {"a", "b", "same"} pairs: AUC, and precision/recall at the chat threshold'),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    limit: int = typer.Option(5, "--limit", min=1, max=50, help="how many tickets to list"),
    reindex: bool = typer.Option(False, "--reindex",
                                 help="index tickets filed before the similarity index existed"),
    prune: bool = typer.Option(False, "--prune",
                               help="drop the index postings of tickets no longer suggested "
                                    "(the nightly housekeeping does this)"),
) -> None:
    """Find tickets about the same problem as TEXT (any wording, with or without diacritics,
    English or Vietnamese), or evaluate the similarity rule on labelled pairs."""
    try:
        given = sum(x for x in (text is not None, eval_file is not None, reindex, prune))
        if given != 1:
            raise InvalidInput("give one of: a TEXT, --eval FILE, --reindex, --prune")
        if eval_file is not None:
            _evaluate(eval_file, as_json)
        elif reindex:
            _reindex(as_json)
        elif prune:
            _prune(as_json)
        else:
            _search(text or "", limit, as_json)
    except HotlineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _evaluate(path: Path, as_json: bool) -> None:
    from hotline.similarity.evaluate import evaluate, read_pairs

    result = evaluate(read_pairs(path), load_settings().similar_threshold)
    if as_json:
        print(json.dumps(result.to_json()))
        return
    console.print(f"{result.n} pairs: AUC {result.auc:.3f}; at the chat threshold "
                  f"{result.threshold}: precision {result.precision:.3f}, recall {result.recall:.3f}")


def _reindex(as_json: bool) -> None:
    from hotline.services.similarity import reindex

    async def _go() -> int:
        async with opened_app() as hotline, hotline.uow() as uow:
            return await reindex(uow, hotline)

    written = run_async(_go)
    print(json.dumps({"indexed": written}) if as_json else f"indexed {written} tickets")


def _prune(as_json: bool) -> None:
    from hotline.services.similarity import prune_postings

    async def _go() -> dict[str, float | int]:
        async with opened_app() as hotline:
            return (await prune_postings(hotline)).to_json()

    result = run_async(_go)
    print(json.dumps(result) if as_json else
          f"pruned the postings of {result['tickets']} tickets ({result['postings']} rows), "
          f"re-posted {result['reposted']}, in {result['seconds']} s")


def _search(text: str, limit: int, as_json: bool) -> None:
    from hotline.services.similarity import search

    if not text.strip():
        raise InvalidInput("the text is empty")

    async def _go() -> tuple[list[dict[str, object]], float]:
        async with opened_app() as hotline, hotline.uow() as uow:
            found = await search(uow, hotline, text, limit=limit, threshold=0.0)
            groups = {g.id: g.code for g in await uow.people.groups()}
            rows = [{"ref": m.ticket.ref, "score": m.score, "category": m.ticket.category,
                     "group": groups.get(m.ticket.group_id, ""), "state": m.ticket.state,
                     "deadline": m.ticket.deadline_at.isoformat(), "title": m.ticket.title}
                    for m in found]
            return rows, hotline.settings.similar_threshold

    rows, threshold = run_async(_go)
    if as_json:
        print(json.dumps({"threshold": threshold, "tickets": rows}, ensure_ascii=False))
        return
    if not rows:
        console.print("no open or recently resolved ticket shares anything with this text")
        return
    table = Table("ref", "score", "suggested", "category", "group", "state", "title")
    for row in rows:
        table.add_row(str(row["ref"]), f"{row['score']:.2f}",
                      "yes" if float(row["score"]) >= threshold else "", str(row["category"]),  # type: ignore[arg-type]
                      str(row["group"]), str(row["state"]), str(row["title"]))
    console.print(table)
