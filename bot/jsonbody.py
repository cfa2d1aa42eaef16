"""JSON bodies from the outside (webhooks, chat APIs), read so that no body can crash us.

``json.loads`` recurses once per nesting level: 100,000 ``[`` are a ``RecursionError`` (a 500
and a traceback in the log), and a body of megabytes costs memory before anybody checked who
sent it. So a webhook checks its secret or signature first, then ``parse``:

- the size is bounded (``max_bytes``);
- the nesting depth is measured on the raw bytes, outside string literals, before parsing, and
  anything deeper than ``max_depth`` (real updates nest a handful of levels) is refused;
- strings are cleaned of lone UTF-16 surrogates (``"\\ud800"`` is valid JSON, but no database,
  log file or chat API can encode it), keys and values alike.

Every refusal is a ``BadBody`` with a short reason for the log -- never the body itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hotline.messages import without_surrogates

#: Deeper than any Telegram or Zalo update (about six levels), far below Python's recursion limit.
MAX_DEPTH = 32
#: A Telegram update is at most a few kilobytes; Zalo's are smaller.
MAX_BYTES = 1024 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BadBody(ValueError):
    """The body is not a JSON document we accept; ``reason`` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """Nesting depth of ``raw`` (brackets inside strings do not count); stops counting, and
    returns ``limit + 1``, as soon as ``limit`` is exceeded, so a hostile body costs little."""
    deepest = level = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            level += 1
            if level > limit:
                return limit + 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def parse(raw: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The document in ``raw``, bounded and cleaned (see the module docstring)."""
    if len(raw) > max_bytes:
        raise BadBody(f"larger than {max_bytes} bytes")
    if depth(raw, max_depth) > max_depth:
        raise BadBody(f"nested deeper than {max_depth} levels")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadBody("not JSON") from None
    return cleaned(value) if _SURROGATE_ESCAPE.search(raw) else value


def cleaned(value: Any) -> Any:
    """``value`` with lone surrogates replaced in every string (and key)."""
    if isinstance(value, str):
        return without_surrogates(value)
    if isinstance(value, list):
        return [cleaned(item) for item in value]
    if isinstance(value, dict):
        return {without_surrogates(k): cleaned(v) for k, v in value.items()}
    return value
