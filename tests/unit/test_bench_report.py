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


LOADS = ((0.5, 0.5, 0.5), (0.6, 0.6, 0.6))


def full_report() -> str:
    return report.report([outcome("alpha", "bench_a.py", "alpha", 1.0),
                          outcome("beta", "bench_b.py", "beta thing", 2.0)],
                         quick=False, command="bench/run", started="2026-11-23 10:00",
                         loads=LOADS, postgres=False)


def test_update_replaces_only_the_rerun_benchmark() -> None:
    first = full_report()
    again = report.updated(first, [outcome("beta", "bench_b.py", "beta thing", 7.0)],
                           command="bench/run --update --only beta", started="2026-11-23 12:00",
                           loads=LOADS)
    assert "- re-measured since: beta at commit" in again and "2026-11-23 12:00" in again
    assert "| alpha | sqlite | rate | 1.00 |" in again  # untouched
    assert "| beta thing | sqlite | rate | 7.00 |" in again
    assert "| beta thing | sqlite | rate | 2.00 |" not in again
    assert again.count("<details>") == 2 and "| 7.0 | x |" in again and "| 2.0 | x |" not in again
    assert again.index("| alpha |") < again.index("| beta thing |")  # rows keep their place


def rerun(text: str, *values: tuple[str, float]) -> str:
    """``text`` after ``bench/run --update`` re-ran the named benchmarks."""
    scripts = {"alpha": ("bench_a.py", "alpha"), "beta": ("bench_b.py", "beta thing")}
    names = ",".join(name for name, _ in values)
    return report.updated(text, [outcome(name, *scripts[name], value) for name, value in values],
                          command=f"bench/run --update --only {names}", started="2026-11-23 12:00",
                          loads=LOADS)


def notes(text: str) -> list[str]:
    return [line.split(" at commit ")[0].removeprefix("- re-measured since: ")
            for line in text.splitlines() if line.startswith("- re-measured since: ")]


def test_a_later_update_supersedes_the_earlier_header_line_for_its_rows() -> None:
    both = rerun(full_report(), ("alpha", 3.0), ("beta", 4.0))
    assert notes(both) == ["alpha, beta"]
    again = rerun(both, ("beta", 7.0))
    assert notes(again) == ["beta", "alpha"]
    assert notes(rerun(again, ("alpha", 5.0))) == ["alpha", "beta"]


def test_a_failed_rerun_lands_in_the_summary_table_with_no_machine_paths() -> None:
    """A benchmark that failed has no figures: its row goes at the end of the summary table
    (not after the last table of some benchmark's output), and its traceback names the checkout
    and the Python installation relatively, since the report is committed."""
    bench = report.Bench("beta", "bench_b.py", [], [], json=True)
    trace = (f'Traceback (most recent call last):\n  File "{report.ROOT}/bench/bench_b.py", line 9\n'
             f'  File "{sys.base_prefix}/lib/python3.11/asyncio/runners.py", line 190\n'
             "RuntimeError: 3 of 10 committed")
    failed = report.Outcome(bench, [sys.executable, f"{report.BENCH}/bench_b.py", "10"], 3.0, 1,
                            trace, [], error="exit 1")
    again = report.updated(full_report(), [failed], command="bench/run --update --only beta",
                           started="2026-11-23 12:00", loads=LOADS)
    lines = again.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| benchmark |"))
    table = lines[head:next(i for i in range(head, len(lines)) if not lines[i].startswith("| "))]
    assert table[-1].startswith("| beta | | **exit 1** |") and "3 of 10 committed" in table[-1]
    assert str(report.ROOT) not in again and str(sys.base_prefix) not in again
    assert 'File "bench/bench_b.py", line 9' in again
    assert 'File "<python>/lib/python3.11/asyncio/runners.py"' in again


def test_one_script_run_as_two_benchmarks_keeps_both_sections() -> None:
    """load_webhook runs twice (``--processing thread`` and ``process``): re-running one
    replaces its own section, never the other's."""
    def run(name: str, value: float, *args: str) -> report.Outcome:
        bench = report.Bench(name, "load.py", list(args), [], json=True)
        out = f"### {name} table\n| a | b |\n|---|---|\n| {value} | x |\n"
        return report.Outcome(bench, [sys.executable, f"{report.BENCH}/load.py", *args], 3.0, 0, out,
                              [Result(name, "postgres", "rate", value, "1/s")])

    first = report.report([run("load", 1.0), run("load_process", 2.0, "--processing", "process")],
                          quick=False, command="bench/run", started="2026-11-23 10:00",
                          loads=LOADS, postgres=True)
    again = report.updated(first, [run("load_process", 5.0, "--processing", "process")],
                           command="bench/run --update --only load_process",
                           started="2026-11-23 12:00", loads=LOADS)
    assert again.count("<details>") == 2
    assert "### load table" in again and "| 1.0 | x |" in again
    assert "| 5.0 | x |" in again and "| 2.0 | x |" not in again
