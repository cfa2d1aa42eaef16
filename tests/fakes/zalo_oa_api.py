"""A fake Zalo Official Account platform on loopback: Open API v3, OAuth v4, signed webhooks.

It answers like Zalo: the message endpoint (``POST /v3.0/oa/message/cs``, token in the
``access_token`` header) always says HTTP 200 and puts failures in the body --
``{"error": -220, "message": "access_token is expired or removed"}`` -- and success is
``{"error": 0, "message": "Success", "data": {"message_id", "user_id"}}``. The OAuth endpoint
(``POST /v4/oa/access_token``, form body, app secret in ``secret_key``) rotates the pair on
every refresh: the refresh token used is dead afterwards, and using it again is
``{"error": -14014, "error_name": ..., "error_reason": ..., "error_description": ...}``.
Webhook deliveries are signed ``X-ZEvent-Signature: mac=sha256(app_id + body + timestamp +
OA secret key)`` over the exact bytes sent.

Both APIs are served from one port; point ``zalo_oa_api_url`` and ``zalo_oa_oauth_url`` at
``server.base_url``.

    async with FakeZaloOAServer() as server:
        access, refresh = server.issue_tokens()
        server.expire_access_token(access)          # next send gets -220
        server.fail_next(-32)                        # rate limit
        server.fail_user("u1", -230)                 # outside the messaging window
        server.fail_http(502)                        # a proxy's error page
        server.hang(3.0)
        await server.push_event(url, server.text_event("u1", "xin chào"))
        server.sent("u1")
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientTimeout, web

from tests.fakes.loopback import LoopbackServer

APP_ID = "2553928453557884079"
APP_SECRET = "fakeAppSecretKeyForTests"
OA_SECRET_KEY = "fakeOaSecretKeyForTests01"
OA_ID = "3662729599332560487"
TEXT_LIMIT = 2000
BUTTON_TYPES = {"oa.query.show", "oa.query.hide", "oa.open.url", "oa.open.phone", "oa.open.sms"}

MESSAGES: dict[int, str] = {
    -32: "Your application reached limit call api",
    -201: "Parameter is invalid",
    -210: "Parameter exceeds allowable limit",
    -213: "User has not followed OA",
    -216: "Access token is invalid",
    -220: "access_token is expired or removed",
    -230: "User has not interacted with the OA in the past 7 days",
    -232: "User has not interacted or the interaction has expired",
}


def mac(app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret.encode()).hexdigest()


@dataclass(frozen=True)
class SentOA:
    user_id: str
    message: dict[str, Any]
    message_id: str
    access_token: str

    @property
    def text(self) -> str | None:
        return self.message.get("text")

    @property
    def buttons(self) -> list[dict[str, Any]]:
        attachment = self.message.get("attachment") or {}
        return list((attachment.get("payload") or {}).get("buttons") or [])


@dataclass
class OAuthCall:
    form: dict[str, str]
    secret_key: str | None
    ok: bool
    received_at: float


@dataclass
class _Token:
    value: str
    expired: bool = False
    issued: list[str] = field(default_factory=list)


class FakeZaloOAServer(LoopbackServer):
    def __init__(self, *, app_id: str = APP_ID, app_secret: str = APP_SECRET,
                 oa_secret_key: str = OA_SECRET_KEY, host: str = "127.0.0.1",
                 expires_in: int = 90000) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.oa_secret_key = oa_secret_key
        super().__init__(host)
        self.expires_in = expires_in
        self.send_calls: list[tuple[dict[str, Any], str | None, float]] = []
        self.oauth_calls: list[OAuthCall] = []
        self.access_tokens: dict[str, bool] = {}  # token -> expired?
        self.refresh_token: str | None = None  # the only one that works
        self.spent_refresh_tokens: list[str] = []
        self._sent: dict[str, list[SentOA]] = {}
        self._failures: list[list[Any]] = []
        self._http_failures: list[list[int]] = []
        self._hangs: list[list[float]] = []
        self._oauth_failures: list[list[Any]] = []
        self._oauth_delay = 0.0
        self._failed_users: dict[str, int] = {}
        self._ids = itertools.count(1)

    # --- lifecycle ---------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v3.0/oa/message/cs", self._send)
        app.router.add_post("/v4/oa/access_token", self._oauth)

    # --- tokens ------------------------------------------------------------------------------
    def issue_tokens(self) -> tuple[str, str]:
        """A fresh pair, as the OA authorisation would give it (the previous refresh token dies)."""
        access = "acc-" + secrets.token_urlsafe(24)
        refresh = "ref-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = False
        if self.refresh_token:
            self.spent_refresh_tokens.append(self.refresh_token)
        self.refresh_token = refresh
        return access, refresh

    def expire_access_token(self, token: str) -> None:
        self.access_tokens[token] = True

    def expire_all_access_tokens(self) -> None:
        for token in self.access_tokens:
            self.access_tokens[token] = True

    @property
    def successful_refreshes(self) -> int:
        return sum(1 for c in self.oauth_calls if c.ok)

    # --- inspection --------------------------------------------------------------------------
    def sent(self, user_id: str) -> list[SentOA]:
        return list(self._sent.get(user_id, []))

    def sent_texts(self, user_id: str) -> list[str]:
        return [m.text or "" for m in self.sent(user_id)]

    async def wait_for_sent(self, user_id: str, count: int = 1, *, within: float = 5.0) -> list[SentOA]:
        await self._wait_until(lambda: len(self.sent(user_id)) >= count, within)
        return self.sent(user_id)

    # --- failure injection -------------------------------------------------------------------
    def fail_next(self, error: int, *, times: int = 1, message: str | None = None) -> None:
        """The next ``times`` sends answer ``{"error": error}`` (HTTP 200, as Zalo does)."""
        self._failures.append([error, message or MESSAGES.get(error, "error"), times])

    def fail_user(self, user_id: str, error: int = -230) -> None:
        """Every send to ``user_id`` fails with ``error`` (outside the messaging window)."""
        self._failed_users[user_id] = error

    def fail_http(self, status: int = 502, *, times: int = 1) -> None:
        """The next ``times`` sends get a non-JSON error page with this HTTP status."""
        self._http_failures.append([status, times])

    def hang(self, seconds: float, *, times: int = 1) -> None:
        self._hangs.append([seconds, times])

    def fail_next_oauth(self, error: int = -14014, *, times: int = 1, reason: str = "Invalid refresh token",
                        http_status: int = 200) -> None:
        self._oauth_failures.append([error, reason, http_status, times])

    def delay_oauth(self, seconds: float) -> None:
        """Slow token endpoint, to make concurrent refreshes overlap."""
        self._oauth_delay = seconds

    # --- webhooks ----------------------------------------------------------------------------
    def _event(self, event_name: str, user_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "user_id_by_app": f"9791221850{abs(hash(user_id)) % 10**9:09d}",
            "event_name": event_name,
            "timestamp": str(int(time.time() * 1000)),
            **extra,
        }

    def _message_event(self, event_name: str, user_id: str, message: dict[str, Any],
                       msg_id: str | None) -> dict[str, Any]:
        message = {"msg_id": msg_id or f"{next(self._ids):020x}", **message}
        return self._event(event_name, user_id, sender={"id": user_id}, recipient={"id": OA_ID},
                           message=message)

    def text_event(self, user_id: str, text: str, *, msg_id: str | None = None) -> dict[str, Any]:
        return self._message_event("user_send_text", user_id, {"text": text}, msg_id)

    def image_event(self, user_id: str, *, url: str = "https://photo-stal-9.zadn.vn/img/anh.jpg",
                    text: str | None = None, msg_id: str | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"attachments": [
            {"type": "image", "payload": {"url": url, "thumbnail": url + "?thumb"}}]}
        if text is not None:
            message["text"] = text
        return self._message_event("user_send_image", user_id, message, msg_id)

    def file_event(self, user_id: str, *, name: str = "giay-phep.pdf", msg_id: str | None = None,
                   url: str = "https://f1.zdn.vn/files/giay-phep.pdf") -> dict[str, Any]:
        message = {"attachments": [{"type": "file", "payload": {
            "url": url, "name": name, "size": "123456", "checksum": "abc", "type": "pdf"}}]}
        return self._message_event("user_send_file", user_id, message, msg_id)

    def sticker_event(self, user_id: str, *, msg_id: str | None = None) -> dict[str, Any]:
        message = {"attachments": [{"type": "sticker", "payload": {"id": "bfe4", "url": "https://s/1"}}]}
        return self._message_event("user_send_sticker", user_id, message, msg_id)

    def follow_event(self, user_id: str, *, follow: bool = True) -> dict[str, Any]:
        return self._event("follow" if follow else "unfollow", user_id, oa_id=OA_ID,
                           follower={"id": user_id}, source="oa_profile")

    async def push_event(
        self,
        url: str,
        event: dict[str, Any],
        *,
        signature: str | None = None,
        signed: bool = True,
        secret: str | None = None,
        tamper: bool = False,
        prefix: bool = True,
        within: float = 10.0,
    ) -> tuple[int, str, float]:
        """POST ``event`` like Zalo; returns (status, body, seconds taken).

        ``signed=False`` sends no signature; ``secret`` signs with another key; ``tamper``
        changes the body after signing; ``signature`` sends that header value verbatim.
        """
        body = json.dumps(event, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-ZEvent-Signature"] = signature
        elif signed:
            value = mac(self.app_id, body, str(event.get("timestamp", "")), secret or self.oa_secret_key)
            headers["X-ZEvent-Signature"] = f"mac={value}" if prefix else value
        if tamper:
            body = body.replace(b'"text": "', b'"text": "X', 1) if b'"text": "' in body else body + b" "
        started = time.monotonic()
        async with self.client.post(url, data=body, headers=headers,
                                     timeout=ClientTimeout(total=within)) as response:
            return response.status, await response.text(), time.monotonic() - started

    # --- handlers ----------------------------------------------------------------------------
    @staticmethod
    def _error(error: int, message: str | None = None) -> web.Response:
        return web.json_response({"error": error, "message": message or MESSAGES.get(error, "error")})

    async def _send(self, request: web.Request) -> web.Response:
        token = request.headers.get("access_token")
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.send_calls.append((body if isinstance(body, dict) else {}, token,
                                asyncio.get_running_loop().time()))
        if self._hangs:
            seconds, times = self._hangs[0]
            self._hangs[0][1] = times - 1
            if self._hangs[0][1] <= 0:
                self._hangs.pop(0)
            await asyncio.sleep(seconds)
        if self._http_failures:
            status, times = self._http_failures[0]
            self._http_failures[0][1] = times - 1
            if self._http_failures[0][1] <= 0:
                self._http_failures.pop(0)
            return web.Response(status=status, text="<html><body>Bad Gateway</body></html>",
                                content_type="text/html")
        if not token or token not in self.access_tokens:
            return self._error(-216)
        if self.access_tokens[token]:
            return self._error(-220)
        if self._failures:
            error, message, times = self._failures[0]
            self._failures[0][2] = times - 1
            if self._failures[0][2] <= 0:
                self._failures.pop(0)
            return self._error(error, message)
        if not isinstance(body, dict):
            return self._error(-201, "body is invalid")
        user_id = (body.get("recipient") or {}).get("user_id")
        message = body.get("message")
        if not isinstance(user_id, str) or not user_id or not isinstance(message, dict):
            return self._error(-201, "recipient.user_id or message is invalid")
        if user_id in self._failed_users:
            return self._error(self._failed_users[user_id])
        problem = self._check_message(message)
        if problem:
            return self._error(-201, problem)
        message_id = f"{next(self._ids):032x}"
        self._sent.setdefault(user_id, []).append(SentOA(user_id, message, message_id, token))
        self._notify_call()
        return web.json_response({"error": 0, "message": "Success",
                                  "data": {"message_id": message_id, "user_id": user_id}})

    @staticmethod
    def _check_message(message: dict[str, Any]) -> str | None:
        text = message.get("text")
        attachment = message.get("attachment")
        if text is None and attachment is None:
            return "message.text or message.attachment is required"
        if text is not None and (not isinstance(text, str) or not text or len(text) > TEXT_LIMIT):
            return f"message.text must be 1-{TEXT_LIMIT} characters"
        if attachment is not None:
            if not isinstance(attachment, dict) or attachment.get("type") != "template":
                return "attachment.type is invalid"
            payload = attachment.get("payload") or {}
            buttons = payload.get("buttons")
            if buttons is not None:
                if not isinstance(buttons, list) or not 1 <= len(buttons) <= 5:
                    return "buttons must be 1-5"
                for button in buttons:
                    if button.get("type") not in BUTTON_TYPES:
                        return "button.type is invalid"
                    title = button.get("title")
                    if not isinstance(title, str) or not 1 <= len(title) <= 100:
                        return "button.title must be 1-100 characters"
                    if button["type"].startswith("oa.query") and not isinstance(button.get("payload"), str):
                        return "button.payload must be a string"
            elif payload.get("template_type") != "media":
                return "template payload is invalid"
        return None

    async def _oauth(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        secret_key = request.headers.get("secret_key")
        if self._oauth_delay:
            await asyncio.sleep(self._oauth_delay)
        call = OAuthCall(form, secret_key, False, asyncio.get_running_loop().time())
        self.oauth_calls.append(call)

        def refuse(error: int, name: str, reason: str, status: int = 200) -> web.Response:
            return web.json_response({"error": error, "error_name": name, "error_reason": reason,
                                      "ref_doc": "https://developers.zalo.me/docs",
                                      "error_description": reason}, status=status)

        if self._oauth_failures:
            error, reason, status, times = self._oauth_failures[0]
            self._oauth_failures[0][3] = times - 1
            if self._oauth_failures[0][3] <= 0:
                self._oauth_failures.pop(0)
            return refuse(error, "Invalid parameter", reason, status)
        if secret_key != self.app_secret:
            return refuse(-14002, "Invalid app secret", "secret_key is invalid")
        if form.get("app_id") != self.app_id:
            return refuse(-14001, "Invalid app id", "app_id is invalid")
        if form.get("grant_type") != "refresh_token":
            return refuse(-14003, "Invalid grant type", "grant_type is invalid")
        if not self.refresh_token or form.get("refresh_token") != self.refresh_token:
            return refuse(-14014, "Invalid parameter", "Invalid refresh token")
        access, refresh = self.issue_tokens()
        call.ok = True
        return web.json_response({"access_token": access, "refresh_token": refresh,
                                  "expires_in": str(self.expires_in)})
