"""``bench/run``: every benchmark in ``bench/``, one after the other, into one markdown table.

Each benchmark runs in its own process (so none inherits another's caches or memory), on
SQLite and PostgreSQL where it supports both (PostgreSQL only when reachable). Benchmarks that
accept ``--json FILE`` (found in their source) hand over their headline figures as a JSON list
of ``bench.common.Result`` rows (bench_web.py: its own {"rows": [...]} document); every
benchmark in ``BENCHES`` does. The report (``bench/RESULTS.md`` by
default) has one table -- benchmark, database, figure, unit, baseline measured in the same
run, ratio (figure / baseline), target and whether it is met -- then the machine, date,
commit and command, and each benchmark's own tables folded underneath.

Run it on a quiet machine: the figures are wall-clock figures. ``--quick`` uses small sizes
to check that everything runs end to end; its figures say little and are marked as such.

``--update --only NAME,...`` re-runs just those benchmarks and replaces their rows and
sections in the existing report, adding a header line that says which rows are newer.

Usage: bench/run [--quick] [--only NAME,...] [--skip NAME,...] [--sqlite-only]
       [--output FILE] [--timeout SECONDS] [--list] [--update]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench.common import Result, machine, postgres_available, read_results  # noqa: E402


@dataclass
class Bench:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    json: bool | None = None  # accepts --json FILE (None: look for it in the script)
    sqlite_flag: bool = True  # accepts --sqlite-only
    postgres_only: bool = False
    note: str = ""
    extra: list[str] = field(default_factory=list)

    def accepts_json(self) -> bool:
        if self.json is None:
            try:
                source = (BENCH / self.script).read_text(encoding="utf-8")
            except OSError:
                return False
            self.json = "pop_json_arg(" in source or '"--json"' in source
        return self.json

    def command(self, quick: bool, sqlite_only: bool, json_file: Path | None) -> list[str]:
        args = [sys.executable, str(BENCH / self.script), *(self.quick if quick else self.full)]
        if sqlite_only and self.sqlite_flag:
            args.append("--sqlite-only")
        if json_file is not None:
            args += ["--json", str(json_file)]
        return args


def number(cell: str | None) -> float | None:
    if cell is None:
        return None
    match = re.search(r"-?[\d,]*\.?\d+", cell.replace("\u202f", ""))
    return float(match.group(0).replace(",", "")) if match else None


def _web_results(rows: list[dict[str, object]], note: str) -> list[Result]:
    results = []
    baseline = {str(r["database"]): r for r in rows if str(r["page"]).startswith("baseline")}
    for row in rows:
        page, kind = str(row["page"]), str(row["database"])
        if page not in ("public board", "dashboard (this month)"):
            continue
        p95 = number(str(row["p95 ms"])) or 0.0
        base = baseline.get(kind)
        board = page == "public board"
        results.append(Result(
            "web", kind, f"{page}, p95 under load", p95, "ms",
            number(str(base["p95 ms"])) if base else None, baseline_label="/healthz p95, ms",
            target="< 300" if board else "", met=p95 < 300 if board else None,
            note=f"{note}; {row.get('req/s')} req/s, p99 {row.get('p99 ms')} ms"))
    return results


def parse_web_json(data: dict[str, object]) -> list[Result]:
    note = f"{data.get('tickets', '?'):,} tickets, {data.get('tool')} {data.get('seconds')} s x " \
           f"{data.get('connections')} connections" if isinstance(data.get("tickets"), int) else ""
    return _web_results(list(data.get("rows", [])), note)  # type: ignore[arg-type]


BENCHES = [
    Bench("filing", "bench_filing.py", ["10000"], ["300"]),
    Bench("classifier", "bench_classifier.py", ["5000"], ["1000"], sqlite_flag=False),
    Bench("similarity", "bench_similarity.py", ["100000"], ["2000"]),
    Bench("calendar", "bench_calendar.py", ["100000"], ["20000"], sqlite_flag=False),
    Bench("engine", "bench_engine.py", ["2000"], ["100"]),
    Bench("sweep", "bench_sweep.py", ["--sizes", "10000,50000,100000"], ["--sizes", "2000"]),
    Bench("digest", "bench_digest.py", ["100000"], ["3000"]),
    Bench("telegram", "bench_telegram.py", ["2000"], ["200", "--users", "50", "--repeats", "1"]),
    Bench("web", "bench_web.py", ["100000"], ["3000", "--seconds", "2"]),
    # Telegram's limits are the ceiling: 3,000 + 200 messages take ~3.5 minutes per database
    # and worker count at 30/s, whatever the machine.
    Bench("outbox", "bench_outbox.py", ["3000", "--one-chat", "200"], ["300", "--one-chat", "20"]),
    # Issue 23's burst: 3,000 updates from 300 users, once with 1 worker and once with 2
    # (targets: recorded p95 <= 150 ms, p99 <= 300 ms; 2 workers >= 1.3 x the updates/s of 1).
    # The script's own default (50,000 from 5,000) is the long run.
    Bench("load_webhook", "load_webhook.py",
          ["--updates", "3000", "--users", "300", "--workers", "1,2"],
          ["--updates", "1000", "--users", "100", "--concurrency", "16", "--workers", "1,2"],
          sqlite_flag=False, postgres_only=True),
    # The same with each worker's inbox processor in a process of its own (the option).
    Bench("load_webhook_process", "load_webhook.py",
          ["--updates", "3000", "--users", "300", "--workers", "1,2", "--processing", "process"],
          ["--updates", "1000", "--users", "100", "--concurrency", "16", "--workers", "1,2",
           "--processing", "process"],
          sqlite_flag=False, postgres_only=True),
]


# --- running -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    bench: Bench
    command: list[str]
    seconds: float
    code: int | None  # None: timed out
    output: str
    results: list[Result]
    error: str = ""


def run_one(bench: Bench, quick: bool, sqlite_only: bool, timeout: float, folder: Path) -> Outcome:
    json_file = folder / f"{bench.name}.json" if bench.accepts_json() else None
    command = bench.command(quick, sqlite_only, json_file)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    code: int | None
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        code, output = done.returncode, done.stdout + ("\n" + done.stderr if done.stderr else "")
    except subprocess.TimeoutExpired as expired:
        code = None
        output = _text(expired.stdout) + "\n" + _text(expired.stderr)
    seconds = time.perf_counter() - started
    outcome = Outcome(bench, command, seconds, code, output, [])
    if code != 0:
        outcome.error = "timed out" if code is None else f"exit {code}"
        return outcome
    try:
        if json_file is not None and json_file.is_file():
            data = json.loads(json_file.read_text(encoding="utf-8"))
            outcome.results = (parse_web_json(data) if isinstance(data, dict)
                               else read_results(json_file))
        else:
            outcome.error = "no figures (no --json output)"
    except Exception as error:  # a bench whose figures changed shape: say so in the report
        outcome.error = f"figures not understood: {type(error).__name__}: {error}"
    return outcome


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# --- the report ----------------------------------------------------------------------------------
def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def report(outcomes: list[Outcome], *, quick: bool, command: str, started: str,
           loads: tuple[tuple[float, ...], tuple[float, ...]], postgres: bool) -> str:
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    lines = ["# Benchmark results", ""]
    if quick:
        lines += ["**QUICK MODE**: small sizes, to check that every benchmark runs end to end. "
                  "These figures are not the product's: targets are stated for the full sizes. "
                  "Run `bench/run` (without `--quick`) on a quiet machine for the real table.", ""]
    lines += [
        f"- machine: {machine()}",
        f"- date: {started} UTC",
        f"- commit: `{commit}`" + (" (with uncommitted changes in the tree)" if dirty else ""),
        f"- command: `{command}`",
        f"- load average (1, 5, 15 min) at start: {_load(loads[0])}; at end: {_load(loads[1])}",
        f"- PostgreSQL: {'reachable' if postgres else 'not reachable: SQLite only'}",
        "",
        "Ratio = figure / baseline; both are measured in the same run, on the same database and "
        "machine. For rates (per second) higher is better, for times (s, ms) lower is better.",
        "",
        "| benchmark | database | figure | value | unit | baseline (same run) | ratio | target "
        "| met | size, notes |",
        "|---|---|---|---:|---|---|---:|---|---|---|",
    ]
    for outcome in outcomes:
        lines += table_rows(outcome)
    lines += ["", "## Each benchmark's own output", ""]
    for outcome in outcomes:
        lines += output_section(outcome)
    return "\n".join(lines).rstrip() + "\n"


def table_rows(outcome: Outcome) -> list[str]:
    if not outcome.results:
        last = (outcome.output.strip().splitlines() or [""])[-1][:200]
        return [f"| {outcome.bench.name} | | **{cell(outcome.error or 'no figures')}** "
                f"| | | | | | | {cell(last)} |"]
    rows = []
    for r in outcome.results:
        ratio = r.ratio if r.ratio is not None else (r.value / r.baseline if r.baseline else None)
        base = "—" if r.baseline is None else f"{fmt(r.baseline)} ({r.baseline_label})"
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        rows.append(
            f"| {r.benchmark} | {r.database} | {cell(r.figure)} | {fmt(r.value)} | {r.unit} "
            f"| {cell(base)} | {fmt(ratio)} | {cell(r.target) or '—'} | {met} "
            f"| {cell(r.note)} |")
    return rows


def _without_machine_paths(text: str) -> str:
    """A failed benchmark's traceback with the checkout and the Python installation named
    relatively: the report is committed, and this machine's paths mean nothing elsewhere."""
    for path, name in ((ROOT, ""), (sys.base_prefix, "<python>/"), (sys.prefix, "<venv>/")):
        text = text.replace(str(path) + "/", name)
    return text


def output_section(outcome: Outcome) -> list[str]:
    argv = outcome.command[1:]
    if "--json" in argv:  # the temporary file is plumbing, not part of the command
        argv = argv[:argv.index("--json")] + argv[argv.index("--json") + 2:]
    shown = " ".join(shlex.quote(a) for a in argv).replace(str(ROOT) + "/", "")
    status = outcome.error or "ok"
    lines = [f"<details><summary><code>{shown}</code>: {outcome.seconds:.0f} s, {status}"
             "</summary>", ""]
    kept = [line for line in outcome.output.splitlines()
            if line.startswith(("|", "#")) or line.strip() == ""]
    body = ("\n".join(kept).strip() if outcome.code == 0
            else _without_machine_paths(outcome.output.strip())[-4000:])
    return lines + (["```", body, "```"] if outcome.code != 0 else [body]) + ["", "</details>", ""]


def updated(previous: str, outcomes: list[Outcome], *, command: str, started: str,
            loads: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    """``previous`` with the re-run benchmarks' rows and sections replaced in place, and a
    header line saying which rows are newer than the rest (commit, date, load)."""
    lines = previous.rstrip("\n").split("\n")
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    names = ", ".join(o.bench.name for o in outcomes)
    note = (f"- re-measured since: {names} at commit `{commit}`, {started} UTC, `{command}` "
            f"(load average at start {_load(loads[0])}, at end {_load(loads[1])})")
    lines = [_superseded(line, {o.bench.name for o in outcomes}) for line in lines]
    lines = [line for line in lines if line is not None]
    at = next(i for i, line in enumerate(lines) if line.startswith("- PostgreSQL:"))
    lines.insert(at + 1, note)
    for outcome in outcomes:
        labels = {outcome.bench.name} | {r.benchmark for r in outcome.results}
        found = [i for i, line in enumerate(lines)
                 if line.startswith("| ") and line.split("|")[1].strip() in labels]
        new_rows = table_rows(outcome)
        if found:
            first = found[0]
            lines = [line for i, line in enumerate(lines) if i not in found[1:]]
            lines[first:first + 1] = new_rows
        else:  # a new benchmark, or a failed one without figures: at the summary table's end
            head = next(i for i, line in enumerate(lines) if line.startswith("| benchmark |"))
            end = next((i for i in range(head, len(lines)) if not lines[i].startswith("| ")),
                       len(lines))
            lines[end:end] = new_rows
        section = output_section(outcome)
        # The same script may run as two benchmarks (load_webhook with --processing): a section
        # is the one whose command line is this run's.
        code = section[0].split("</code>")[0] + "</code>"
        start = next((i for i, line in enumerate(lines) if line.startswith(code)), None)
        if start is None:
            lines += ["", *section]
        else:
            end = next(i for i in range(start, len(lines)) if lines[i] == "</details>")
            lines[start:end + 2] = section
    return "\n".join(lines).rstrip() + "\n"


def _superseded(line: str, rerun: set[str]) -> str | None:
    """An older "re-measured since" header line without the benchmarks measured again now
    (None when nothing of it is left); any other line unchanged."""
    prefix = "- re-measured since: "
    if not line.startswith(prefix) or " at commit " not in line:
        return line
    names, rest = line[len(prefix):].split(" at commit ", 1)
    kept = [name for name in names.split(", ") if name not in rerun]
    return f"{prefix}{', '.join(kept)} at commit {rest}" if kept else None


def _load(values: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (minutes, not an hour)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names to run")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    parser.add_argument("--sqlite-only", action="store_true", help="no PostgreSQL runs")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per benchmark (default 3600, quick 900)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--update", action="store_true",
                        help="with --only: replace just those benchmarks' rows in the existing report")
    args = parser.parse_args()
    names = [b.name for b in BENCHES]
    if args.list:
        for b in BENCHES:
            print(f"{b.name:13} {b.script:22} full: {' '.join(b.full) or '(defaults)'}; "
                  f"quick: {' '.join(b.quick)}")
        return 0
    only = [n for n in args.only.split(",") if n]
    skip = [n for n in args.skip.split(",") if n]
    unknown = [n for n in only + skip if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
    if args.update and (not only or args.quick or not args.output.is_file()):
        parser.error("--update needs --only, full sizes and an existing report to update")
    postgres = not args.sqlite_only and postgres_available()
    wanted = [b for b in BENCHES if (not only or b.name in only) and b.name not in skip]
    chosen = [b for b in wanted if not (b.postgres_only and not postgres)]
    timeout = args.timeout or (900.0 if args.quick else 3600.0)
    command = "bench/run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())  # the report's date (UTC)
    load_start = os.getloadavg()
    print(f"{len(chosen)} benchmarks on {machine()}, load average {_load(load_start)}"
          + ("" if postgres else "; PostgreSQL not used"), flush=True)
    if not postgres and not args.sqlite_only:
        print("PostgreSQL not reachable: SQLite only (set HOTLINE_BENCH_PG_URL)", flush=True)
    outcomes = [Outcome(b, [sys.executable, str(BENCH / b.script)], 0.0, 0, "", [],
                        error="skipped: needs PostgreSQL")
                for b in wanted if b not in chosen]
    with tempfile.TemporaryDirectory() as folder:
        for i, bench in enumerate(chosen, 1):
            print(f"[{i}/{len(chosen)}] {bench.name} ...", end=" ", flush=True)
            outcome = run_one(bench, args.quick, args.sqlite_only or not postgres, timeout,
                              Path(folder))
            outcomes.append(outcome)
            print(f"{outcome.seconds:.0f} s, " + (outcome.error or f"{len(outcome.results)} figures"),
                  flush=True)
    if args.update:
        text = updated(args.output.read_text(encoding="utf-8"), outcomes, command=command.strip(),
                       started=started, loads=(load_start, os.getloadavg()))
    else:
        text = report(outcomes, quick=args.quick, command=command.strip(), started=started,
                      loads=(load_start, os.getloadavg()), postgres=postgres)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    failed = [o.bench.name for o in outcomes if o.error and not o.error.startswith("skipped")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
