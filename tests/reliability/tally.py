"""What the reliability run tried and what it lost, printed once at the end of the run.

Tests add to ``TALLY`` *before* asserting, so a failing run still reports what went missing.
"""

from __future__ import annotations

from collections import Counter

TALLY: Counter[str] = Counter()

#: (tally key, how the summary names it) for the "tried" half of the line.
TRIED = (
    ("kill_intake", "intake"),
    ("kill_sweep", "sweep"),
    ("kill_dispatch", "dispatch"),
)


def summary_line() -> str | None:
    """The one-line summary, or None when no reliability test ran."""
    if not TALLY:
        return None
    kinds = [name for key, name in TRIED if TALLY[key]]
    kills = sum(TALLY[key] for key, _ in TRIED)
    tried = [f"{kills} kills ({'/'.join(kinds) or 'none'})",
             f"{TALLY['pg_restart']} PostgreSQL restart(s)",
             f"{TALLY['sqlite_fault']} SQLite faults (disk full/read-only)",
             f"{TALLY['hostile']:,} hostile updates",
             f"{TALLY['guessed']} guessed IDs"]
    lost = (f"lost: {TALLY['lost_reports']} reports, {TALLY['lost_messages']} messages, "
            f"{TALLY['lost_escalations']} escalations; duplicated: {TALLY['duplicated']}; "
            f"half-written: {TALLY['half_written']}; leaked: {TALLY['leaked']}")
    return "reliability: " + ", ".join(tried) + "; " + lost
