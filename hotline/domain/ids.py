"""Human-readable ticket references: ``HL-2026-000123``."""

from __future__ import annotations

import re

from hotline.errors import InvalidInput, NotFound

TICKET_REF_RE = re.compile(r"^HL-(\d{4})-(\d{6})$")
_LOOSE_RE = re.compile(r"\bHL[-\s]?(\d{4})[-\s]?(\d{1,6})\b", re.IGNORECASE)


def format_ref(year: int, seq: int) -> str:
    if not 1 <= seq <= 999_999:
        raise ValueError(f"ticket sequence out of range: {seq}")
    return f"HL-{year:04d}-{seq:06d}"


def parse_ref(text: str) -> str:
    """Normalise what a user typed (``hl-2026-123``, ``HL 2026 000123``) to the canonical ref.

    A ref no ticket can have (sequence 0) is answered like a missing ticket, never a crash."""
    match = _LOOSE_RE.search(text.strip())
    if not match:
        raise InvalidInput(
            f"not a ticket ID: {text[:40]!r} (expected HL-YYYY-NNNNNN)",
            key="error.bad_ticket_ref",
        )
    year, seq = int(match.group(1)), int(match.group(2))
    if seq < 1:  # HL-2026-000000: well formed, but no ticket can have it
        ref = f"HL-{year:04d}-{seq:06d}"
        raise NotFound(f"ticket {ref} not found", key="error.ticket_not_found", ref=ref)
    return format_ref(year, seq)


#: Largest value of the 32-bit integer primary keys (people, extensions); a bigger number from
#: a button or a URL would overflow the database driver instead of simply matching nothing.
MAX_ROW_ID = 2**31 - 1


def row_id(text: str | None) -> int | None:
    """The row id a button payload names (``exok:17``), or None for anything no row can have:
    not ASCII digits, zero, or beyond ``MAX_ROW_ID`` -- treated as an unknown choice."""
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ROW_ID else None
