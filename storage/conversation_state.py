"""Where a chat user stands in a multi-message flow: a plain record, written back explicitly.

Every inbound event reads it and many change it, so it is kept out of the ORM session: loading
it as columns and writing it with one prebuilt UPDATE (only when it changed) spares each event
the session's unit-of-work flush, which cost more than the rest of an ordinary message. Nothing
else references the row, so there is no relationship or identity to keep consistent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

IDLE = "idle"


class ConversationState:
    """``step`` and ``data`` of one (channel, external id); ``id`` is None until first stored.

    ``data`` must be reassigned, not edited in place: the change is found by comparing with
    what was loaded.
    """

    __slots__ = ("_loaded", "channel", "data", "external_id", "id", "step", "updated_at")

    def __init__(self, channel: str, external_id: str, *, id: int | None = None, step: str = IDLE,
                 data: dict[str, Any] | None = None, updated_at: datetime | None = None) -> None:
        self.id = id
        self.channel = channel
        self.external_id = external_id
        self.step = step or IDLE
        self.data: dict[str, Any] = dict(data or {})
        self.updated_at = updated_at
        self._loaded: tuple[str, dict[str, Any]] = (self.step, dict(self.data))

    @property
    def changed(self) -> bool:
        return (self.step, self.data) != self._loaded

    def mark_stored(self, new_id: int | None = None) -> None:
        if new_id is not None:
            self.id = new_id
        self._loaded = (self.step, dict(self.data))
