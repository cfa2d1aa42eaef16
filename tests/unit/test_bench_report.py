"""``bench/run --update``: only the re-run benchmarks' rows and sections change."""

from __future__ import annotations

import sys

from bench import report
from bench.common import Result


def outcome(name: str, script: str, label: str, value: float) -> report.Outcome:
    bench = report.Bench(name, script, [], [], json=True)
    out = f"### {name} table\n| a | b |\n|---|---|\n| {value} | x |\n"
    return report.Outcome(bench, [sys.executable, f"{report.BENCH}/{script}", "10"], 3.0, 0, out,
                          [Result(label, "sqlite", "rate", value, "1/s", baseline=10.0)])


def test_update_replaces_only_the_rerun_benchmark() -> None:
    loads = ((0.5, 0.5, 0.5), (0.6, 0.6, 0.6))
    first = report.report([outcome("alpha", "bench_a.py", "alpha", 1.0),
                           outcome("beta", "bench_b.py", "beta thing", 2.0)],
                          quick=False, command="bench/run", started="2026-11-23 10:00",
                          loads=loads, postgres=False)
    again = report.updated(first, [outcome("beta", "bench_b.py", "beta thing", 7.0)],
                           command="bench/run --update --only beta", started="2026-11-23 12:00",
                           loads=loads)
    assert "- re-measured since: beta at commit" in again and "2026-11-23 12:00" in again
    assert "| alpha | sqlite | rate | 1.00 |" in again  # untouched
    assert "| beta thing | sqlite | rate | 7.00 |" in again
    assert "| beta thing | sqlite | rate | 2.00 |" not in again
    assert again.count("<details>") == 2 and "| 7.0 | x |" in again and "| 2.0 | x |" not in again
    assert again.index("| alpha |") < again.index("| beta thing |")  # rows keep their place


def test_a_later_update_supersedes_the_earlier_header_line_for_its_rows() -> None:
    loads = ((0.5, 0.5, 0.5), (0.6, 0.6, 0.6))
    first = report.report([outcome("alpha", "bench_a.py", "alpha", 1.0),
                           outcome("beta", "bench_b.py", "beta thing", 2.0)],
                          quick=False, command="bench/run", started="2026-11-23 10:00",
                          loads=loads, postgres=False)
    both = report.updated(first, [outcome("alpha", "bench_a.py", "alpha", 3.0),
                                  outcome("beta", "bench_b.py", "beta thing", 4.0)],
                          command="bench/run --update --only alpha,beta",
                          started="2026-11-23 11:00", loads=loads)
    again = report.updated(both, [outcome("beta", "bench_b.py", "beta thing", 7.0)],
                           command="bench/run --update --only beta", started="2026-11-23 12:00",
                           loads=loads)
    notes = [line for line in again.splitlines() if line.startswith("- re-measured since: ")]
    assert [n.split(" at commit ")[0] for n in notes] == ["- re-measured since: beta",
                                                          "- re-measured since: alpha"]
    final = report.updated(again, [outcome("alpha", "bench_a.py", "alpha", 5.0)],
                           command="bench/run --update --only alpha", started="2026-11-23 13:00",
                           loads=loads)
    notes = [line for line in final.splitlines() if line.startswith("- re-measured since: ")]
    assert [n.split(" at commit ")[0] for n in notes] == ["- re-measured since: alpha",
                                                          "- re-measured since: beta"]
