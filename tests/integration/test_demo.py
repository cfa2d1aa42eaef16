"""``hotline demo`` (the README's first command) works and produces what leaders receive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from openpyxl import load_workbook

from hotline.demo.run import run_demo

pytestmark = pytest.mark.skipif(
    os.environ.get("HOTLINE_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="the demo always runs on its own SQLite file; once per CI run is enough",
)


@pytest.mark.timeout(300)
async def test_short_demo_writes_digest_chart_and_workbook(tmp_path: Path, classifier_cache: Path) -> None:
    summary = await run_demo(tmp_path / "demo", seed=3, weeks=2, classifier_cache_dir=classifier_cache)
    counts = summary.counts
    assert counts["tickets"] >= 20
    assert counts.get("event:resolved", 0) > 0 and counts.get("event:rated", 0) > 0
    assert sum(counts.get(f"escalation:{x}", 0) for x in ("reminder", "l1", "l2", "l3")) > 0
    assert counts["messages"] > counts["tickets"]
    names = {p.name for p in summary.files}
    assert {"2026-W47-leaders-vi.html", "2026-W47-leaders-vi.png", "2026-W47-leaders-en.html"} <= names
    for path in summary.files:
        assert path.exists() and path.stat().st_size > 0
    written = [p for p in (tmp_path / "demo").rglob("*") if p.is_file()]
    assert written and not [p.name for p in written if p.stat().st_size <= 1]  # nothing empty
    png = next(p for p in summary.files if p.suffix == ".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = next(p for p in summary.files if p.name == "2026-W47-leaders-en.html").read_text("utf-8")
    assert "<script" not in html and "2026-W47" in html
    # Some enterprises report a problem already reported, in other words, and follow it; the
    # leaders' digest leads with kinds.
    assert counts.get("event:followed", 0) >= 2
    assert "kinds of blockers resolved" in html and "reporters affected" in html
    xlsx = next(p for p in summary.files if p.suffix == ".xlsx")
    assert len(load_workbook(xlsx, read_only=True).sheetnames) >= 3


@pytest.mark.timeout(300)
async def test_same_seed_same_story(tmp_path: Path, classifier_cache: Path) -> None:
    first = await run_demo(tmp_path / "a", seed=11, weeks=1, classifier_cache_dir=classifier_cache)
    second = await run_demo(tmp_path / "b", seed=11, weeks=1, classifier_cache_dir=classifier_cache)
    assert first.counts == second.counts
