"""Human-readable ticket references: ``HL-2026-000123``."""

from __future__ import annotations

import re

from hotline.errors import InvalidInput

TICKET_REF_RE = re.compile(r"^HL-(\d{4})-(\d{6})$")
_LOOSE_RE = re.compile(r"\bHL[-\s]?(\d{4})[-\s]?(\d{1,6})\b", re.IGNORECASE)


def format_ref(year: int, seq: int) -> str:
    if not 1 <= seq <= 999_999:
        raise ValueError(f"ticket sequence out of range: {seq}")
    return f"HL-{year:04d}-{seq:06d}"


def parse_ref(text: str) -> str:
    """Normalise what a user typed (``hl-2026-123``, ``HL 2026 000123``) to the canonical ref."""
    match = _LOOSE_RE.search(text.strip())
    if not match:
        raise InvalidInput(
            f"not a ticket ID: {text[:40]!r} (expected HL-YYYY-NNNNNN)",
            key="error.bad_ticket_ref",
        )
    return format_ref(int(match.group(1)), int(match.group(2)))
