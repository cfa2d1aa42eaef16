"""How the inbox reads the Zalo events it recorded (``bot.inbox``): the intake's own mapping."""

from __future__ import annotations

from typing import Any

from bot.inbox import Decoder
from bot.zalo.bot_mapping import CHANNEL as BOT_CHANNEL
from bot.zalo.bot_mapping import update_to_event
from bot.zalo.oa_mapping import CHANNEL as OA_CHANNEL
from bot.zalo.oa_mapping import event_to_inbound
from hotline.messages import InboundEvent


def zalo_decoders() -> dict[str, Decoder]:
    """The Zalo channels' readers (the webhooks record only what maps to an event)."""

    def oa(payload: Any) -> InboundEvent | None:
        mapped = event_to_inbound(payload)
        return mapped if isinstance(mapped, InboundEvent) else None

    return {BOT_CHANNEL: update_to_event, OA_CHANNEL: oa}
