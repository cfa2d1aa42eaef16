"""A fake Zalo Bot Platform on loopback, answering the way the real one does.

Same URLs (``POST /bot<TOKEN>/<method>`` with a JSON body), same envelope
(``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code": ..., "description": ...}``),
same update shape (``{"event_name": "message.text.received", "message": {...}}``), and the
platform's peculiarities: ``getUpdates`` hands out one update per call with no offset and
ends an empty long poll with ``error_code`` 408; ``getUpdates`` is refused while a webhook is
set; texts and captions are limited to 2000 characters; ``sendPhoto`` takes a URL, not an
upload; webhook deliveries carry ``X-Bot-Api-Secret-Token``.

Strict where our code could get it wrong (token, JSON body, text length, photo URL, webhook
secret of 8-256 characters), lenient elsewhere (any chat id exists, HTTP webhook URLs are fine).

    async with FakeZaloBotServer() as server:
        client = ZaloBotClient(server.token, server.base_url)
        server.queue_update(server.text_update("xin chào"))
        server.fail_next("sendMessage", 429, retry_after=2)
        server.hang("sendMessage", 3.0)
        await server.push_webhook(server.text_update("hi"))   # after setWebhook
        server.sent_texts("chat-1")

Every call is recorded in ``server.calls`` (method, decoded body, loop time).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from aiohttp import ClientTimeout, web

from tests.fakes import fake_token
from tests.fakes.loopback import LoopbackServer

SECRET_HEADER = "X-Bot-Api-Secret-Token"
TEXT_LIMIT = 2000

DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request timeout",
    409: "Conflict: webhook is active, delete it before using getUpdates",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class ApiError(Exception):
    def __init__(self, error_code: int, description: str | None = None, *, http_status: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description or DESCRIPTIONS.get(error_code, f"Error {error_code}")
        self.http_status = http_status if http_status is not None else (
            error_code if 400 <= error_code < 600 else 200
        )
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.http_status)


@dataclass(frozen=True)
class ApiCall:
    method: str
    params: dict[str, Any]
    received_at: float


@dataclass(frozen=True)
class SentMessage:
    method: str
    chat_id: str
    message_id: str
    text: str | None
    photo: str | None = None


class FakeZaloBotServer(LoopbackServer):
    def __init__(self, *, token: str | None = None, host: str = "127.0.0.1", max_poll_seconds: float = 1.0,
                 no_update_http_status: int = 200) -> None:
        self.token = token or fake_token()
        super().__init__(host)
        #: Cap on one long poll, so tests never wait the real 30 seconds.
        self.max_poll_seconds = max_poll_seconds
        #: HTTP status sent with ``error_code`` 408 (the body is what clients must read).
        self.no_update_http_status = no_update_http_status
        self.bot_id = self.token.split(":", 1)[0]
        self.calls: list[ApiCall] = []
        self.webhook: dict[str, Any] = {"url": "", "secret_token": None, "updated_at": 0}
        self.webhook_deliveries: list[tuple[int, str]] = []
        self._updates: list[dict[str, Any]] = []
        self._update_waiters: set[asyncio.Event] = set()
        self._sent: dict[str, list[SentMessage]] = {}
        self._failures: dict[str, list[list[Any]]] = {}
        self._hangs: dict[str, list[list[float]]] = {}
        self._failed_chats: dict[str, ApiError] = {}
        self._message_ids = itertools.count(1)

    # --- lifecycle ---------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)

    def _release_waiters(self) -> None:
        for waiter in self._update_waiters:
            waiter.set()

    # --- inspection --------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for_calls(self, method: str, count: int = 1, *, within: float = 5.0) -> list[ApiCall]:
        await self._wait_until(lambda: len(self.calls_to(method)) >= count, within)
        return self.calls_to(method)

    def sent(self, chat_id: str) -> list[SentMessage]:
        return list(self._sent.get(str(chat_id), []))

    def sent_texts(self, chat_id: str) -> list[str]:
        return [m.text or "" for m in self.sent(chat_id)]

    async def wait_for_sent(self, chat_id: str, count: int = 1, *, within: float = 5.0) -> list[SentMessage]:
        await self._wait_until(lambda: len(self.sent(chat_id)) >= count, within)
        return self.sent(chat_id)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    # --- failure injection -------------------------------------------------------------------
    def fail_next(self, method: str, error_code: int, *, times: int = 1, description: str | None = None,
                  http_status: int | None = None, retry_after: int | None = None) -> None:
        """The next ``times`` calls of ``method`` get this error (after being recorded)."""
        self._failures.setdefault(method, []).append(
            [ApiError(error_code, description, http_status=http_status, retry_after=retry_after), times]
        )

    def fail_chat(self, chat_id: str, error_code: int = 403, description: str | None = None) -> None:
        self._failed_chats[str(chat_id)] = ApiError(error_code, description)

    def hang(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Delay the next ``times`` answers of ``method`` by ``seconds``."""
        self._hangs.setdefault(method, []).append([seconds, times])

    # --- updates -----------------------------------------------------------------------------
    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        self._updates.append(update)
        for waiter in list(self._update_waiters):
            waiter.set()
        return update

    async def push_webhook(
        self,
        update: dict[str, Any],
        *,
        url: str | None = None,
        secret_token: str | EllipsisType | None = ...,
        wrapped: bool = False,
        within: float = 10.0,
    ) -> tuple[int, str]:
        """Deliver ``update`` to the webhook like the platform; returns (status, body).

        ``secret_token=...`` sends the registered secret, ``None`` no header, a string that value;
        ``wrapped`` sends ``{"ok": true, "result": update}`` (seen from some deployments).
        """
        target = url or self.webhook.get("url")
        if not target:
            raise RuntimeError("no webhook: call setWebhook or pass url=")
        secret = self.webhook.get("secret_token") if secret_token is ... else secret_token
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = str(secret)
        body = {"ok": True, "result": update} if wrapped else update
        async with self.client.post(target, data=json.dumps(body), headers=headers,
                                     timeout=ClientTimeout(total=within)) as response:
            result = (response.status, await response.text())
        self.webhook_deliveries.append(result)
        return result

    # --- realistic updates -------------------------------------------------------------------
    def _message(self, chat_id: str, user_id: str | None, display_name: str, chat_type: str,
                 **content: Any) -> dict[str, Any]:
        return {
            "message_id": f"{next(self._message_ids):020x}",
            "date": int(time.time() * 1000),
            "chat": {"id": chat_id, "chat_type": chat_type},
            "from": {"id": user_id or chat_id, "display_name": display_name, "is_bot": False},
            **content,
        }

    def text_update(self, text: str, *, chat_id: str = "e4ea2cd5189df1c3a88c", user_id: str | None = None,
                    display_name: str = "Nguyễn Văn An", chat_type: str = "PRIVATE") -> dict[str, Any]:
        return {"event_name": "message.text.received",
                "message": self._message(chat_id, user_id, display_name, chat_type, text=text)}

    def image_update(self, caption: str | None = None, *, chat_id: str = "e4ea2cd5189df1c3a88c",
                     photo_url: str = "https://photo-stal-1.zadn.vn/abc/anh.jpg",
                     display_name: str = "Nguyễn Văn An") -> dict[str, Any]:
        content: dict[str, Any] = {"photo_url": photo_url}
        if caption is not None:
            content["caption"] = caption
        return {"event_name": "message.image.received",
                "message": self._message(chat_id, None, display_name, "PRIVATE", **content)}

    def sticker_update(self, *, chat_id: str = "e4ea2cd5189df1c3a88c") -> dict[str, Any]:
        return {"event_name": "message.sticker.received",
                "message": self._message(chat_id, None, "Nguyễn Văn An", "PRIVATE",
                                         sticker="d063f44dc80821567819",
                                         url="https://zalo-api.zadn.vn/api/emoticon/sticker/webpc?eid=1")}

    def unsupported_update(self, *, chat_id: str = "e4ea2cd5189df1c3a88c") -> dict[str, Any]:
        return {"event_name": "message.unsupported.received",
                "message": self._message(chat_id, None, "Nguyễn Văn An", "PRIVATE")}

    # --- dispatch ----------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.method != "POST":
            return ApiError(404, "Not Found").response()
        try:
            params = await request.json() if await request.read() else {}
        except ValueError:
            return ApiError(400, "Bad Request: invalid JSON").response()
        if not isinstance(params, dict):
            return ApiError(400, "Bad Request: body must be an object").response()
        self.calls.append(ApiCall(method, params, asyncio.get_running_loop().time()))
        self._notify_call()
        if request.match_info["token"] != self.token:
            return ApiError(401).response()
        hangs = self._hangs.get(method)
        if hangs:
            seconds, times = hangs[0]
            hangs[0][1] = times - 1
            if hangs[0][1] <= 0:
                hangs.pop(0)
            await asyncio.sleep(seconds)
        failures = self._failures.get(method)
        if failures:
            error, times = failures[0]
            failures[0][1] = times - 1
            if failures[0][1] <= 0:
                failures.pop(0)
            return error.response()
        handler = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendChatAction": self._send_chat_action,
        }.get(method)
        if handler is None:
            return ApiError(404, "Not Found: method not found").response()
        try:
            result = await handler(params)
        except ApiError as error:
            return error.response()
        if result is ...:
            return web.json_response({"ok": True})
        return web.json_response({"ok": True, "result": result})

    async def _get_me(self, params: dict[str, Any]) -> Any:
        return {"id": self.bot_id, "account_name": "bot.HotlineTest", "account_type": "BASIC",
                "can_join_groups": False}

    async def _get_updates(self, params: dict[str, Any]) -> Any:
        if self.webhook.get("url"):
            raise ApiError(409)
        try:
            wait = float(params.get("timeout", 30))
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: timeout must be a number of seconds") from None
        deadline = asyncio.get_running_loop().time() + min(wait, self.max_poll_seconds)
        while not self._updates:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise ApiError(408, http_status=self.no_update_http_status)
            waiter = asyncio.Event()
            self._update_waiters.add(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter.wait()
            except TimeoutError:
                pass
            finally:
                self._update_waiters.discard(waiter)
        return self._updates.pop(0)

    async def _set_webhook(self, params: dict[str, Any]) -> Any:
        url, secret = params.get("url"), params.get("secret_token")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: url is invalid")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            raise ApiError(400, "Bad Request: secret_token must be 8-256 characters")
        self.webhook = {"url": url, "secret_token": secret, "updated_at": int(time.time() * 1000)}
        return {"url": url, "updated_at": self.webhook["updated_at"]}

    async def _delete_webhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {"url": "", "secret_token": None, "updated_at": int(time.time() * 1000)}
        return {"url": "", "updated_at": self.webhook["updated_at"]}

    async def _get_webhook_info(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook["url"], "updated_at": self.webhook["updated_at"]}

    def _chat(self, params: dict[str, Any]) -> str:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            raise ApiError(400, "Bad Request: chat_id is required")
        if chat_id in self._failed_chats:
            raise self._failed_chats[chat_id]
        return chat_id

    def _record(self, method: str, chat_id: str, text: str | None, photo: str | None = None) -> Any:
        message_id = f"{next(self._message_ids):020x}"
        self._sent.setdefault(chat_id, []).append(SentMessage(method, chat_id, message_id, text, photo))
        self._notify_call()
        return {"message_id": message_id, "date": int(time.time() * 1000)}

    async def _send_message(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        text = params.get("text")
        if not isinstance(text, str) or not text:
            raise ApiError(400, "Bad Request: text is required")
        if len(text) > TEXT_LIMIT:
            raise ApiError(400, f"Bad Request: text must be 1-{TEXT_LIMIT} characters")
        return self._record("sendMessage", chat_id, text)

    async def _send_photo(self, params: dict[str, Any]) -> Any:
        chat_id = self._chat(params)
        photo, caption = params.get("photo"), params.get("caption")
        if not isinstance(photo, str) or not photo.startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: photo must be a URL")
        if caption is not None and (not isinstance(caption, str) or len(caption) > TEXT_LIMIT):
            raise ApiError(400, f"Bad Request: caption must be 1-{TEXT_LIMIT} characters")
        return self._record("sendPhoto", chat_id, caption, photo)

    async def _send_chat_action(self, params: dict[str, Any]) -> Any:
        self._chat(params)
        if params.get("action") not in ("typing", "upload_photo"):
            raise ApiError(400, "Bad Request: action is invalid")
        return ...
