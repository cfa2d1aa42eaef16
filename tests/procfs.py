"""Processes as Linux's /proc shows them, for the tests and benchmarks that watch the
processes ``hotline run`` makes (workers, inbox processors): who is whose child, who runs."""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (empty if the process is gone):
    [0] state, [1] parent pid, [11] user and [12] system CPU ticks."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (empty where there is no /proc)."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and (fields := stat_fields(int(entry.name)))
            and int(fields[1]) == pid]


def running(pid: int) -> bool:
    """Alive and not a zombie (exited, waiting to be reaped by its parent)."""
    fields = stat_fields(pid)
    return bool(fields) and fields[0] != "Z"
