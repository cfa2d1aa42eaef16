"""HTTP client for the Zalo Bot Platform: ``POST {base}/bot<TOKEN>/<method>`` with a JSON body.

The platform copies Telegram's shape: every answer is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ...}``. Two base hosts are in use
(``bot-api.zapps.me`` and ``bot-api.zaloplatforms.com``), so the base URL is configuration.

The client raises ``ZaloBotError`` for an error envelope, ``ZaloTransportError`` when no
answer came and ``TimeoutError`` when it came too late; callers map both onto their own outcome
(the poller backs off, the sender returns a ``DeliveryResult``). The token is part of the URL,
so every message built here is redacted before it can reach a log or the outbox.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from bot import jsonbody
from bot.zalo.common import ZaloTransportError, redact

DEFAULT_TIMEOUT = 30.0
#: ``error_code`` of ``getUpdates`` when the long poll ended without a new update.
NO_UPDATE = 408


class ZaloBotError(Exception):
    """An ``ok: false`` answer (or a non-JSON error page, with the HTTP status as the code)."""

    def __init__(self, error_code: int, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after


class ZaloBotClient:
    """One bot token, one base URL; owns its aiohttp session unless given one."""

    def __init__(
        self,
        token: str,
        base_url: str = "https://bot-api.zapps.me",
        *,
        session: ClientSession | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not token or "/" in token:
            raise ValueError("a Zalo bot token is required (and never contains '/')")
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None

    def _url(self, method: str) -> str:
        return f"{self.base_url}/bot{self.token}/{method}"

    async def _get_session(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession()
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ZaloBotClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, *, deadline: float | None = None
    ) -> Any:
        """Call ``method`` and return its ``result``; raise ``ZaloBotError`` on ``ok: false``."""
        session = await self._get_session()
        try:
            async with session.post(
                self._url(method),
                json=params or {},
                timeout=ClientTimeout(total=deadline or self.timeout),
            ) as response:
                raw = await response.read()
                status = response.status
        except ClientError as error:
            # aiohttp quotes the URL (and so the token) in some messages.
            raise ZaloTransportError(redact(f"{type(error).__name__}: {error}", self.token)) from None
        try:
            body = jsonbody.parse(raw)
        except ValueError:
            snippet = raw[:200].decode("utf-8", "replace")
            raise ZaloBotError(status, redact(f"non-JSON answer: {snippet}", self.token)) from None
        if not isinstance(body, dict):
            raise ZaloBotError(status, "unexpected answer shape")
        if body.get("ok") is True:
            return body.get("result")
        code = body.get("error_code")
        numeric = isinstance(code, int) or (isinstance(code, str) and code.lstrip("-").isdigit())
        error_code = int(code) if numeric else status
        description = str(body.get("description") or body.get("message") or "error")
        parameters = body.get("parameters")
        retry_after = None
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            retry_after = float(parameters["retry_after"])
        raise ZaloBotError(error_code, redact(description, self.token), retry_after=retry_after)

    # --- the methods the hotline uses -------------------------------------------------------
    async def get_me(self) -> dict[str, Any]:
        return await self.call("getMe")

    async def get_updates(self, poll_seconds: int = 30) -> Any:
        """One long poll; the platform takes ``timeout`` as a string of seconds."""
        return await self.call("getUpdates", {"timeout": str(poll_seconds)}, deadline=poll_seconds + 10)

    async def set_webhook(self, url: str, secret_token: str) -> Any:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook")

    async def get_webhook_info(self) -> dict[str, Any]:
        return await self.call("getWebhookInfo")

    async def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})

    async def send_photo(self, chat_id: str, photo: str, caption: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"chat_id": chat_id, "photo": photo}
        if caption:
            params["caption"] = caption
        return await self.call("sendPhoto", params)

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> Any:
        return await self.call("sendChatAction", {"chat_id": chat_id, "action": action})
