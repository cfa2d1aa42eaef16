"""Turns one engine ``OutboundMessage`` into Zalo OA consultation messages; reports a result.

What one message becomes:

1. The text as plain text (``common.to_plain``), cut into pieces of at most 2000 characters on
   line boundaries, each one ``POST /v3.0/oa/message/cs``, in order.
2. Buttons ride on the last piece as a template attachment: ``{"type": "template",
   "payload": {"buttons": [{"title", "type": "oa.query.hide", "payload"}]}}``. A press comes
   back as a user message whose text is the payload (``oa_mapping``). Zalo shows at most a
   few buttons with short titles; a keyboard that does not fit becomes numbered choices
   (``choices``), like on the Bot Platform.
3. A photo given as a public URL is sent as an image template; a local file cannot be (the OA
   upload API is not used), so the text carries a short note naming it.

Error codes (HTTP 200, ``error`` != 0) and what they become:

- token refused (-216 invalid, -220 expired): refresh the pair (``OATokenManager``) and retry
  that call once; a second refusal, or a failed refresh, is ``transient`` -- the message waits
  for the operator to re-authorise the OA, it is not lost;
- -32 rate limit: ``retry_after`` with a configurable backoff (Zalo gives no delay);
- outside the messaging window (-213 not following, -230 no interaction for 7 days,
  -232 no interaction yet): ``blocked`` with an "undeliverable" error -- never retried; the
  dispatcher marks the contact inactive and tells the coordinator;
- 5xx, network, timeout: ``transient``; any other code: ``permanent``.

The sets of codes are constructor arguments: Zalo's published table has changed before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from bot.delivery import DeliveryResult
from bot.zalo.bot_sender import OutboundMessageError, attachment_note, is_public_url
from bot.zalo.choices import ChoiceMenus
from bot.zalo.common import ZALO_TEXT_LIMIT, ZaloTransportError, split_plain, to_plain
from bot.zalo.oa_api import ZaloHTTPError, ZaloOAClient, ZaloOAError
from bot.zalo.oa_tokens import OATokenManager, TokenUnavailable
from hotline.messages import Button, OutboundMessage

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"
TOKEN_ERRORS = frozenset({-216, -220})
RATE_LIMIT_ERRORS = frozenset({-32})
WINDOW_ERRORS = frozenset({-213, -230, -232})
MAX_BUTTONS = 5
MAX_TITLE = 100
MAX_PAYLOAD = 1000


class _Abort(Exception):
    def __init__(self, result: DeliveryResult) -> None:
        super().__init__(result.error)
        self.result = result


def buttons_fit(buttons: tuple[tuple[Button, ...], ...], *, max_buttons: int = MAX_BUTTONS) -> bool:
    flat = [b for row in buttons for b in row]
    return 0 < len(flat) <= max_buttons and all(
        b.label.strip() and len(b.label) <= MAX_TITLE and 0 < len(b.payload) <= MAX_PAYLOAD for b in flat
    )


class ZaloOASender:
    """``ChannelSender`` for a Zalo Official Account."""

    channel = CHANNEL

    def __init__(
        self,
        client: ZaloOAClient,
        tokens: OATokenManager,
        *,
        menus: ChoiceMenus | None = None,
        message_limit: int = ZALO_TEXT_LIMIT,
        max_buttons: int = MAX_BUTTONS,
        button_type: str = "oa.query.hide",
        rate_limit_backoff: float = 60.0,
        timeout: float = 30.0,
        default_language: str = "vi",
        token_errors: Iterable[int] = TOKEN_ERRORS,
        rate_limit_errors: Iterable[int] = RATE_LIMIT_ERRORS,
        window_errors: Iterable[int] = WINDOW_ERRORS,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.menus = menus
        self.message_limit = message_limit
        self.max_buttons = max_buttons
        self.button_type = button_type
        self.rate_limit_backoff = rate_limit_backoff
        self.timeout = timeout
        self.default_language = default_language
        self.token_errors = frozenset(token_errors)
        self.rate_limit_errors = frozenset(rate_limit_errors)
        self.window_errors = frozenset(window_errors)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if message.channel != CHANNEL:
            raise OutboundMessageError(f"message for channel {message.channel!r} sent to the Zalo OA")
        lang = message.meta.get("lang") or self.default_language
        text = to_plain(message.text)
        template_buttons = buttons_fit(message.buttons, max_buttons=self.max_buttons)
        if message.buttons and not template_buttons:
            if self.menus is None:
                raise OutboundMessageError("this keyboard does not fit Zalo OA buttons: pass menus=")
            text = await self.menus.render(message, text)
        photo_url = message.photo if is_public_url(message.photo) else None
        notes = [attachment_note(ref, lang) for ref in (message.photo, message.document)
                 if ref and ref != photo_url]
        if notes:
            text = "\n".join([*notes, text]) if text else "\n".join(notes)
        pieces = split_plain(text, self.message_limit)
        if not pieces and not photo_url:
            if message.retire_buttons_of:
                return DeliveryResult("sent")  # only old buttons to retire: Zalo keeps them
            return DeliveryResult("permanent", error="empty message")
        bodies: list[dict[str, Any]] = []
        if photo_url:
            bodies.append(self._image(photo_url))
        for index, piece in enumerate(pieces):
            body: dict[str, Any] = {"text": piece}
            if template_buttons and index == len(pieces) - 1:
                body["attachment"] = self._buttons(message.buttons)
            bodies.append(body)
        if template_buttons and not pieces:
            # Buttons need a text to hang on; an image alone cannot carry them.
            bodies.append({"text": "…", "attachment": self._buttons(message.buttons)})
        state = _SendState()
        last: str | None = None
        try:
            for body in bodies:
                last = await self._send_one(message.chat_id, body, state) or last
        except _Abort as abort:
            return abort.result
        return DeliveryResult("sent", message_id=last)

    def _buttons(self, buttons: tuple[tuple[Button, ...], ...]) -> dict[str, Any]:
        return {
            "type": "template",
            "payload": {
                "buttons": [
                    {"title": b.label, "type": self.button_type, "payload": b.payload}
                    for row in buttons for b in row
                ]
            },
        }

    @staticmethod
    def _image(url: str) -> dict[str, Any]:
        return {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "media", "elements": [{"media_type": "image", "url": url}]},
            }
        }

    async def _send_one(self, user_id: str, body: dict[str, Any], state: _SendState) -> str | None:
        token = await self._token()
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    data = await self.client.send(token, user_id, body)
            except ZaloOAError as error:
                if error.error in self.token_errors and not state.refreshed:
                    state.refreshed = True
                    log.info("zalo oa: token refused (%s); refreshing once", error.error)
                    token = await self._token(rejected=token)
                    continue
                raise _Abort(self._result(error)) from None
            except (ZaloTransportError, ZaloHTTPError, TimeoutError) as error:
                raise _Abort(DeliveryResult("transient", error=str(error) or "timeout")) from None
            message_id = data.get("message_id")
            return str(message_id) if message_id is not None else None

    async def _token(self, rejected: str | None = None) -> str:
        try:
            if rejected is None:
                return await self.tokens.access_token()
            return await self.tokens.refresh(rejected)
        except TokenUnavailable as error:
            raise _Abort(DeliveryResult("transient", error=str(error))) from None

    def _result(self, error: ZaloOAError) -> DeliveryResult:
        text = str(error)
        if error.error in self.rate_limit_errors:
            return DeliveryResult("retry_after", retry_after=self.rate_limit_backoff, error=text)
        if error.error in self.window_errors:
            return DeliveryResult("blocked", error=f"undeliverable: outside the messaging window ({text})")
        if error.error in self.token_errors:
            return DeliveryResult("transient", error=f"token refused after refresh ({text})")
        return DeliveryResult("permanent", error=text)


class _SendState:
    """Per ``send``: the token may be refreshed once for the whole message, not once per piece."""

    def __init__(self) -> None:
        self.refreshed = False
