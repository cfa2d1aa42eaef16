"""Fake chat platform APIs (real HTTP on loopback) for the tests and benchmarks."""

from __future__ import annotations

import secrets


def fake_token(bot_id: int | None = None) -> str:
    """A bot token of the real shape (``<digits>:<url-safe text>``), made fresh each run so
    that no token-like secret sits in the repository."""
    number = bot_id if bot_id is not None else 100_000_000 + secrets.randbelow(900_000_000)
    return f"{number}:{secrets.token_urlsafe(26)}"
