"""What a channel sender reports back to the outbox dispatcher, whatever the channel.

The dispatcher decides what to do with an outbox row from ``DeliveryResult.status`` alone, so
every channel (Telegram, Zalo, console) maps its own errors onto the same few outcomes:

- ``sent``: done; ``message_id`` is the channel's id of the message that carries the buttons
  (the last piece of a split text), so a later message can retire them.
- ``retry_after``: the channel asked us to slow down; try again after ``retry_after`` seconds
  (this is not a failure and should not count towards the attempt limit).
- ``transient``: 5xx, network error or timeout; retry with backoff.
- ``blocked``: the person blocked the bot (Telegram 403); mark the contact inactive, stop.
- ``bad_markup``: the channel could not parse our markup; resend once as plain text.
- ``permanent``: any other refusal (bad chat id, file too large...); retrying cannot help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from hotline.messages import OutboundMessage

DeliveryStatus = Literal["sent", "retry_after", "transient", "blocked", "bad_markup", "permanent"]


@dataclass(frozen=True)
class DeliveryResult:
    status: DeliveryStatus
    retry_after: float | None = None
    error: str | None = None
    message_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "sent"

    @property
    def retryable(self) -> bool:
        """Whether sending the same message again later can succeed."""
        return self.status in ("retry_after", "transient")


@runtime_checkable
class ChannelSender(Protocol):
    """Sends one outbox message over one channel; never raises for delivery problems.

    Exceptions are reserved for programming errors (a message that no channel could ever
    accept, such as a button payload over the channel's limit).
    """

    async def send(self, message: OutboundMessage) -> DeliveryResult: ...
