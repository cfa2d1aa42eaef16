"""Splitting id lists for ``IN (...)`` clauses under the drivers' bound-parameter limits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

#: Ids per ``IN (...)`` list, below both SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 5000
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
