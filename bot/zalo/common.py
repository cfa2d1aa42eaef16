"""Small pieces both Zalo adapters share: plain text, splitting, redaction, the handler type.

Zalo shows text as typed: no HTML, no Markdown by default. The engine writes Telegram's HTML
subset, so tags are removed with ``hotline.i18n.plain`` (line breaks kept: a ticket list must
stay a list), and a link keeps its address first, since the address is the only part that
still works once the tag is gone.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from hotline.i18n import plain
from hotline.messages import InboundEvent
from hotline.text import split_message

#: What the intake runners call for every event; the engine's ``handle`` fits.
EventHandler = Callable[[InboundEvent], Awaitable[object]]

#: Both Zalo APIs refuse a text over 2000 characters. Lengths are measured in UTF-16 code
#: units, which is never shorter than a count of characters, so a piece that fits here fits.
ZALO_TEXT_LIMIT = 2000

_LINK = re.compile(r'<a\s+href="([^"]*)"\s*>(.*?)</a>', re.IGNORECASE | re.DOTALL)


class ZaloTransportError(Exception):
    """A request got no answer (connection refused, reset, DNS...); the message is redacted."""


def to_plain(markup: str) -> str:
    """Zalo text from the engine's HTML subset: tags dropped, entities decoded, links kept."""

    def link(match: re.Match[str]) -> str:
        url, label = match.group(1), match.group(2)
        label_text = plain(label).strip()
        url_text = plain(url).strip()
        if not url_text or url_text == label_text:
            return label
        return f"{label} ({url})"

    return plain(_LINK.sub(link, markup)).strip()


def split_plain(text: str, limit: int = ZALO_TEXT_LIMIT) -> list[str]:
    """Pieces of at most ``limit``, cut after a line break where possible, in order."""
    return split_message(text, limit, html=False)


def redact(text: str, *secrets: str | None) -> str:
    """Error text safe for the outbox's ``last_error`` and the log: tokens never leave."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text


#: Longest id we store (contacts, inbound update ids, outbox chats are 64-character columns).
MAX_ID_CHARS = 64


def as_id(value: Any) -> str | None:
    """An id from an update, or None when it is missing or longer than any real Zalo id (a
    longer one would fail the database insert instead of being dropped as malformed)."""
    text = as_str(value)
    return text if text is not None and len(text) <= MAX_ID_CHARS else None


def as_str(value: Any) -> str | None:
    """Zalo sends ids as strings in one place and numbers in another; compare them as text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | str):
        text = str(value).strip()
        return text or None
    return None
