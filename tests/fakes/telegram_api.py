"""A fake Telegram Bot API server on loopback, driven by the real aiogram client in tests.

Why a server and not mocks: the adapter's behaviour that matters (multipart uploads, error
envelopes, ``retry_after``, long-poll offsets, timeouts) lives in the HTTP exchange, so tests
go through aiogram's own ``AiohttpSession`` over real sockets and the fake answers the way
Telegram does: same URLs (``/bot<TOKEN>/<method>``), same field names, same envelope
(``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code": ..., "description": ...}``).

It is strict where Telegram is strict and our code could get it wrong (HTML markup, text and
caption lengths, ``callback_data`` of 1-64 bytes, editing a message that is not there,
answering a callback query twice, ``getUpdates`` while a webhook is set) and lenient elsewhere
(any chat id is a valid chat, HTTP webhook URLs are fine).

Usage (see ``tests/fakes/conftest_telegram.py`` for the fixtures)::

    async with FakeTelegramServer() as server:
        bot = make_test_bot(server)
        server.queue_update(server.text_update("xin chào"))
        ...
        server.fail_next("sendMessage", 429, retry_after=3)
        server.fail_chat(42, 403)
        server.hang("sendMessage", 2.0)
        server.sent_messages(42)
        await server.wait_for_sent(42, 3)  # until the bot's third message to chat 42 is there

Every call is recorded in ``server.calls`` with its decoded parameters and the loop time it
was received, which later lets the outbox tests check rate limits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import EllipsisType
from typing import Any, ClassVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import ClientSession, ClientTimeout, web

from tests.fakes import fake_token
from tests.fakes.loopback import LoopbackServer

WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: Descriptions Telegram sends for the failures tests inject most.
DESCRIPTIONS: dict[int, str] = {
    400: 'Bad Request: can\'t parse entities: Unsupported start tag "foo" at byte offset 0',
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

# Update types Telegram leaves out when allowed_updates was never given.
_DEFAULT_EXCLUDED_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}

_JSON_FIELDS = {
    "reply_markup",
    "allowed_updates",
    "commands",
    "scope",
    "link_preview_options",
    "entities",
    "caption_entities",
    "reply_parameters",
    "media",
}
_INT_FIELDS = {
    "offset",
    "limit",
    "timeout",
    "message_id",
    "cache_time",
    "max_connections",
    "message_thread_id",
    "reply_to_message_id",
}
_BOOL_FIELDS = {
    "drop_pending_updates",
    "show_alert",
    "disable_notification",
    "protect_content",
    "disable_web_page_preview",
    "has_spoiler",
    "disable_content_type_detection",
    "allow_sending_without_reply",
}
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class ApiError(Exception):
    """An error answer, raised inside method implementations and turned into the envelope."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.status)


@dataclass(frozen=True)
class UploadedFile:
    field: str
    filename: str | None
    size: int
    content_type: str | None


@dataclass(frozen=True)
class ApiCall:
    method: str  # canonical Bot API spelling, e.g. "sendMessage"
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    received_at: float  # event-loop time (monotonic seconds)


@dataclass
class SentMessage:
    """A message the bot sent, as Telegram stores it (``message`` is mutated by edits)."""

    method: str
    params: dict[str, Any]
    message: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def html(self) -> str | None:
        """The text or caption exactly as the bot sent it (markup included)."""
        return self.params.get("text", self.params.get("caption"))

    @property
    def text(self) -> str | None:
        """What the user sees: markup parsed away."""
        return self.message.get("text", self.message.get("caption"))

    @property
    def parse_mode(self) -> str | None:
        return self.params.get("parse_mode")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.message.get("reply_markup")

    @property
    def buttons(self) -> list[list[tuple[str, str]]]:
        """Current inline keyboard as rows of (label, callback_data)."""
        markup = self.reply_markup or {}
        return [
            [(b.get("text", ""), b.get("callback_data", "")) for b in row]
            for row in markup.get("inline_keyboard", [])
        ]


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    remaining: int


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: a handful of tags, balanced, four named entities."""

    ALLOWED: ClassVar[frozenset[str]] = frozenset(
        "b strong i em u ins s strike del span tg-spoiler a code pre blockquote tg-emoji".split()
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.out: list[str] = []
        self.error: str | None = None

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self._fail(f'Unsupported start tag "{tag}"')
        elif tag == "span" and ("class", "tg-spoiler") not in attrs:
            self._fail('Tag "span" must have class "tg-spoiler"')
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self._fail(f'Unmatched end tag "{tag}"')
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        table = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in table:
            self._fail(f'Unsupported HTML entity "&{name};"')
            return
        self.out.append(table[name])

    def handle_charref(self, name: str) -> None:
        try:
            code = int(name[1:], 16) if name[:1] in "xX" else int(name)
            self.out.append(chr(code))
        except (ValueError, OverflowError):
            self._fail(f'Unsupported HTML entity "&#{name};"')

    def unknown_decl(self, data: str) -> None:
        self._fail("Unexpected declaration")


def render_html(text: str) -> str:
    """Parse Telegram HTML the way the Bot API does; raise ApiError 400 when it would."""
    if re.search(r"<(?![a-zA-Z/])", text):
        raise ApiError(400, "Bad Request: can't parse entities: Unexpected character '<'")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.error is None and parser.stack:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    if parser.error is not None:
        raise ApiError(400, f"Bad Request: can't parse entities: {parser.error}")
    return "".join(parser.out)


class FakeTelegramServer(LoopbackServer):
    """An aiohttp app answering ``/bot<token>/<method>`` like the Bot API does."""

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_username: str = "hotline_test_bot",
        bot_first_name: str = "Hotline Test",
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token = token or fake_token()
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        super().__init__(host)
        self.calls: list[ApiCall] = []
        self.answered_callbacks: list[dict[str, Any]] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook: dict[str, Any] = {}
        self.chat_actions: list[dict[str, Any]] = []

        self._updates: list[dict[str, Any]] = []
        self._allowed_updates: list[str] | None = None
        self._waiters: set[asyncio.Event] = set()
        self._poll_generation = 0
        self._update_ids = itertools.count(100_000_001)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(4_000_000_000_000_001)
        self._pending_callbacks: set[str] = set()
        self._message_ids: dict[int | str, itertools.count[int]] = {}
        self._chats: dict[int | str, dict[str, Any]] = {}
        self._messages: dict[int | str, dict[int, dict[str, Any]]] = {}
        self._sent: dict[int | str, list[SentMessage]] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._failed_chats: dict[int | str, ApiError] = {}
        self._hangs: dict[str, list[list[float]]] = {}
        self._sent_listeners: dict[int | str, set[asyncio.Event]] = {}
        self._methods: dict[
            str, tuple[str, Callable[[dict[str, Any], dict[str, UploadedFile]], Awaitable[Any]]]
        ] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "answerCallbackQuery": self._answer_callback_query,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "editMessageText": self._edit_message_text,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendChatAction": self._send_chat_action,
            }.items()
        }

    # --- lifecycle --------------------------------------------------------------------------
    client_max_size = 60 * 1024 * 1024

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)

    def _release_waiters(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    # --- inspection -------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[ApiCall]:
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    async def wait_for_calls(self, method: str, count: int = 1, *, within: float = 5.0) -> list[ApiCall]:
        """Wait until ``method`` was called at least ``count`` times (for async flows)."""
        await self._wait_until(lambda: len(self.calls_to(method)) >= count, within)
        return self.calls_to(method)

    def sent_messages(self, chat_id: int | str) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id``, oldest first."""
        return list(self._sent.get(_chat_key(chat_id), []))

    async def wait_for_sent(
        self, chat_id: int | str, count: int = 1, *, within: float = 5.0
    ) -> list[SentMessage]:
        """Wait until the bot sent at least ``count`` messages to ``chat_id``; return them all,
        oldest first (as ``sent_messages``). Raises ``TimeoutError`` after ``within`` seconds.

        Only a send to that chat wakes the waiter, so thousands of chats can wait at once (the
        webhook load test, ``bench/load_webhook.py``, waits for every user's replies this way).
        """
        key = _chat_key(chat_id)
        async with asyncio.timeout(within):
            while len(self._sent.get(key, ())) < count:
                event = asyncio.Event()
                listeners = self._sent_listeners.setdefault(key, set())
                listeners.add(event)
                try:
                    await event.wait()
                finally:
                    listeners.discard(event)
                    if not listeners:
                        self._sent_listeners.pop(key, None)
        return self.sent_messages(key)

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    # --- failure injection ------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (after recording them)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = DESCRIPTIONS.get(status, f"Error {status}")
        description = description.format(retry_after=retry_after)
        self._failures.setdefault(method.lower(), []).append(
            _Failure(status, description, retry_after, times)
        )

    def fail_chat(self, chat_id: int | str, status: int = 403, description: str | None = None) -> None:
        """Every call aimed at ``chat_id`` fails from now on (a user who blocked the bot)."""
        self._failed_chats[_chat_key(chat_id)] = ApiError(
            status, description or DESCRIPTIONS.get(status, f"Error {status}")
        )

    def unfail_chat(self, chat_id: int | str) -> None:
        self._failed_chats.pop(_chat_key(chat_id), None)

    def hang(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Delay the answer to the next ``times`` calls of ``method`` by ``seconds``."""
        self._hangs.setdefault(method.lower(), []).append([seconds, times])

    # --- updates ----------------------------------------------------------------------------
    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Make ``update`` available to getUpdates (an ``update_id`` is assigned if missing)."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._wake_pollers()
        return update

    async def post_to_webhook(
        self,
        update: dict[str, Any],
        *,
        url: str | None = None,
        secret_token: str | EllipsisType | None = ...,
        within: float = 10.0,
    ) -> tuple[int, str]:
        """POST ``update`` like Telegram's webhook delivery; returns (status, body).

        ``secret_token``: ``...`` sends the secret registered by setWebhook (if any), ``None``
        sends no header, a string sends that header value.
        """
        target = url or self.webhook.get("url")
        if not target:
            raise RuntimeError("no webhook URL: pass url= or call setWebhook first")
        update.setdefault("update_id", next(self._update_ids))
        secret = self.webhook.get("secret_token") if secret_token is ... else secret_token
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[WEBHOOK_SECRET_HEADER] = str(secret)
        async with self.client.post(
            target, data=json.dumps(update), headers=headers, timeout=ClientTimeout(total=within)
        ) as response:
            return response.status, await response.text()

    # --- builders for realistic updates -----------------------------------------------------
    @staticmethod
    def user(
        user_id: int = 1001,
        first_name: str = "An",
        last_name: str | None = "Nguyễn",
        *,
        username: str | None = "an_nguyen",
        language_code: str | None = "vi",
        is_bot: bool = False,
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def private_chat(self, user: dict[str, Any] | None = None) -> dict[str, Any]:
        user = user or self.user()
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        if "last_name" in user:
            chat["last_name"] = user["last_name"]
        if "username" in user:
            chat["username"] = user["username"]
        self._chats[chat["id"]] = chat
        return chat

    def group_chat(
        self, chat_id: int = -1001234567890, title: str = "Tổ công tác liên ngành"
    ) -> dict[str, Any]:
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        chat = {"id": chat_id, "type": kind, "title": title}
        self._chats[chat_id] = chat
        return chat

    def message(
        self,
        *,
        user: dict[str, Any] | None = None,
        chat: dict[str, Any] | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """A Message from ``user`` in ``chat`` (private chat with the user by default)."""
        user = user or self.user()
        chat = chat or self.private_chat(user)
        message = {
            "message_id": self._next_message_id(chat["id"]),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        self._messages.setdefault(chat["id"], {})[message["message_id"]] = message
        return message

    def _update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), kind: payload}

    def text_update(self, text: str, **who: Any) -> dict[str, Any]:
        return self._update("message", self.message(text=text, **who))

    def command_update(
        self, command: str, args: str = "", *, mention: bool = False, **who: Any
    ) -> dict[str, Any]:
        """``/command[@bot] args`` with the ``bot_command`` entity Telegram adds."""
        head = f"/{command}" + (f"@{self.bot_user['username']}" if mention else "")
        text = f"{head} {args}".rstrip()
        entities = [{"type": "bot_command", "offset": 0, "length": utf16_len(head)}]
        return self._update("message", self.message(text=text, entities=entities, **who))

    def photo_update(self, caption: str | None = None, **who: Any) -> dict[str, Any]:
        content: dict[str, Any] = {"photo": self._photo_sizes(54_321)}
        if caption is not None:
            content["caption"] = caption
        return self._update("message", self.message(**content, **who))

    def document_update(
        self,
        file_name: str = "giay-phep.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        **who: Any,
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"document": self._document(file_name, mime_type, 123_456)}
        if caption is not None:
            content["caption"] = caption
        return self._update("message", self.message(**content, **who))

    def sticker_update(self, **who: Any) -> dict[str, Any]:
        fid = next(self._file_ids)
        sticker = {
            "file_id": f"CAACAgIAAxkBAAI{fid:08d}",
            "file_unique_id": f"AgADsticker{fid}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._update("message", self.message(sticker=sticker, **who))

    def voice_update(self, **who: Any) -> dict[str, Any]:
        fid = next(self._file_ids)
        voice = {
            "file_id": f"AwACAgIAAxkBAAI{fid:08d}",
            "file_unique_id": f"AgADvoice{fid}",
            "duration": 3,
            "mime_type": "audio/ogg",
        }
        return self._update("message", self.message(voice=voice, **who))

    def location_update(self, **who: Any) -> dict[str, Any]:
        location = {"latitude": 21.0285, "longitude": 105.8542}
        return self._update("message", self.message(location=location, **who))

    def edited_message_update(self, text: str, **who: Any) -> dict[str, Any]:
        message = self.message(text=text, **who)
        message["edit_date"] = message["date"] + 5
        return self._update("edited_message", message)

    def channel_post_update(self, text: str = "tin kênh") -> dict[str, Any]:
        chat = {"id": -1009876543210, "type": "channel", "title": "Kênh tin"}
        post = {
            "message_id": self._next_message_id(chat["id"]),
            "sender_chat": chat,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        return self._update("channel_post", post)

    def my_chat_member_update(self, status: str = "kicked", **who: Any) -> dict[str, Any]:
        """The user blocked (``kicked``) or unblocked (``member``) the bot."""
        user = who.get("user") or self.user()
        chat = who.get("chat") or self.private_chat(user)
        now = int(time.time())
        member = {
            "chat": chat,
            "from": user,
            "date": now,
            "old_chat_member": {"status": "member", "user": self.bot_user},
            "new_chat_member": {"status": status, "user": self.bot_user}
            | ({"until_date": 0} if status == "kicked" else {}),
        }
        return self._update("my_chat_member", member)

    def new_members_update(self, chat: dict[str, Any] | None = None) -> dict[str, Any]:
        """A service message: somebody joined a group."""
        chat = chat or self.group_chat()
        joiner = self.user(2002, "Bình", "Trần", username="binh_tran")
        return self._update("message", self.message(user=joiner, chat=chat, new_chat_members=[joiner]))

    def callback_update(
        self,
        data: str | None,
        *,
        message: dict[str, Any] | SentMessage | None = None,
        user: dict[str, Any] | None = None,
        chat: dict[str, Any] | None = None,
        inaccessible: bool = False,
    ) -> dict[str, Any]:
        """A button press. ``message`` is the bot message carrying the keyboard (a
        ``SentMessage`` from ``sent_messages`` or a Message dict); by default a fresh bot
        message with that button is made up in the user's private chat."""
        user = user or self.user()
        if isinstance(message, SentMessage):
            message = message.message
        if message is None:
            chat = chat or self.private_chat(user)
            message = {
                "message_id": self._next_message_id(chat["id"]),
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
                "text": "Chọn một mục",
                "reply_markup": {"inline_keyboard": [[{"text": "OK", "callback_data": data or "x"}]]},
            }
            self._messages.setdefault(chat["id"], {})[message["message_id"]] = message
        if inaccessible:
            message = {"chat": message["chat"], "message_id": message["message_id"], "date": 0}
        query_id = str(next(self._callback_ids))
        self._pending_callbacks.add(query_id)
        query: dict[str, Any] = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": f"-{abs(hash(str(message['chat']['id']))) % 10**18}",
        }
        if data is not None:
            query["data"] = data
        return self._update("callback_query", query)

    # --- internals --------------------------------------------------------------------------
    def _next_message_id(self, chat_id: int | str) -> int:
        return next(self._message_ids.setdefault(_chat_key(chat_id), itertools.count(1)))

    def _photo_sizes(self, size: int) -> list[dict[str, Any]]:
        fid = next(self._file_ids)
        dims = [(90, 67, max(1, size // 40)), (320, 240, max(1, size // 8)), (1280, 960, size)]
        return [
            {
                "file_id": f"AgACAgIAAxkBAAI{fid:08d}_{w}",
                "file_unique_id": f"AQADphoto{fid}_{w}",
                "width": w,
                "height": h,
                "file_size": s,
            }
            for w, h, s in dims
        ]

    def _document(self, file_name: str | None, mime: str | None, size: int) -> dict[str, Any]:
        fid = next(self._file_ids)
        doc: dict[str, Any] = {
            "file_id": f"BQACAgIAAxkBAAI{fid:08d}",
            "file_unique_id": f"AgADdoc{fid}",
            "file_size": size,
        }
        if file_name:
            doc["file_name"] = file_name
        if mime:
            doc["mime_type"] = mime
        return doc

    def _wake_pollers(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    def _chat(self, chat_id: int | str) -> dict[str, Any]:
        key = _chat_key(chat_id)
        if key in self._chats:
            return self._chats[key]
        if isinstance(key, str):
            return {"id": -1001000000001, "type": "channel", "title": key}
        if key > 0:
            return {"id": key, "type": "private", "first_name": "User"}
        kind = "supergroup" if str(key).startswith("-100") else "group"
        return {"id": key, "type": kind, "title": "Group"}

    def _deliverable(self) -> list[dict[str, Any]]:
        allowed = self._allowed_updates
        kept: list[dict[str, Any]] = []
        for update in self._updates:
            kind = next((k for k in update if k != "update_id"), "")
            if allowed is not None:
                ok = kind in allowed
            else:
                ok = kind not in _DEFAULT_EXCLUDED_UPDATES
            if ok:
                kept.append(update)
        # Telegram never creates updates of types the bot did not ask for.
        self._updates = kept
        return kept

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return ApiError(401, "Unauthorized").response()
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return ApiError(404, "Not Found").response()
        name, handler = entry
        params, files = await _read_params(request)
        self.calls.append(ApiCall(name, params, files, asyncio.get_running_loop().time()))
        self._notify_call()

        hangs = self._hangs.get(name.lower())
        if hangs:
            seconds = hangs[0][0]
            hangs[0][1] -= 1
            if hangs[0][1] <= 0:
                hangs.pop(0)
            await asyncio.sleep(seconds)

        try:
            failures = self._failures.get(name.lower())
            if failures:
                failure = failures[0]
                failure.remaining -= 1
                if failure.remaining <= 0:
                    failures.pop(0)
                raise ApiError(failure.status, failure.description, failure.retry_after)
            chat_id = params.get("chat_id")
            if chat_id is not None and _chat_key(chat_id) in self._failed_chats:
                raise self._failed_chats[_chat_key(chat_id)]
            result = await handler(params, files)
        except ApiError as error:
            return error.response()
        body: dict[str, Any] = {"ok": True, "result": result}
        if name in ("setWebhook", "deleteWebhook"):
            body["description"] = (
                "Webhook was set" if name == "setWebhook" and params.get("url") else "Webhook was deleted"
            )
        return web.json_response(body)

    # --- methods ----------------------------------------------------------------------------
    async def _get_me(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.bot_user

    async def _get_updates(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if self.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        if "allowed_updates" in params:
            self._allowed_updates = params["allowed_updates"] or None
        if offset:
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            else:
                self._updates = self._updates[offset:]
        # A newer getUpdates call terminates an older one still waiting, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, DESCRIPTIONS[409])
            ready = self._deliverable()[:limit]
            remaining = deadline - loop.time()
            if ready or remaining <= 0:
                return ready
            waiter = asyncio.Event()
            self._waiters.add(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter.wait()
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(waiter)

    async def _set_webhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        url = params.get("url", "")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.match(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if not url:
            self.webhook = {}
            return True
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": params.get("allowed_updates"),
            "max_connections": params.get("max_connections", 40),
        }
        if "allowed_updates" in params:
            self._allowed_updates = params["allowed_updates"] or None
        return True

    async def _delete_webhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {}
        return True

    async def _get_webhook_info(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.get("url"):
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    def _check_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode("utf-8")) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _render(self, text: str, parse_mode: str | None) -> str:
        if parse_mode is None:
            return text
        if parse_mode.lower() != "html":
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r} in fake")
        return render_html(text)

    def _store(
        self,
        method: str,
        params: dict[str, Any],
        content: dict[str, Any],
        files: dict[str, UploadedFile] | None = None,
    ) -> dict[str, Any]:
        chat = self._chat(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        markup = self._check_markup(params)
        if markup is not None:
            message["reply_markup"] = markup
        key = _chat_key(params["chat_id"])
        self._messages.setdefault(key, {})[message["message_id"]] = message
        self._sent.setdefault(key, []).append(SentMessage(method, params, message, files or {}))
        for listener in self._sent_listeners.get(key, ()):
            listener.set()
        return message

    async def _send_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        _require(params, "chat_id")
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        visible = self._render(text, params.get("parse_mode"))
        if not visible.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MESSAGE_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return self._store("sendMessage", params, {"text": visible})

    def _caption(self, params: dict[str, Any]) -> dict[str, Any]:
        caption = params.get("caption")
        if not caption:
            return {}
        visible = self._render(caption, params.get("parse_mode"))
        if utf16_len(visible) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": visible}

    def _input_file(
        self, params: dict[str, Any], files: dict[str, UploadedFile], name: str
    ) -> UploadedFile | str:
        value = params.get(name)
        if value is None:
            raise ApiError(400, f"Bad Request: there is no {name} in the request")
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise ApiError(400, f"Bad Request: there is no {name} in the request")
            if upload.size == 0:
                raise ApiError(400, "Bad Request: file must be non-empty")
            return upload
        return str(value)

    async def _send_photo(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        _require(params, "chat_id")
        source = self._input_file(params, files, "photo")
        content = self._caption(params)
        self._check_markup(params)
        size = source.size if isinstance(source, UploadedFile) else 50_000
        content["photo"] = self._photo_sizes(size)
        return self._store("sendPhoto", params, content, files)

    async def _send_document(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        _require(params, "chat_id")
        source = self._input_file(params, files, "document")
        content = self._caption(params)
        self._check_markup(params)
        if isinstance(source, UploadedFile):
            # Telegram guesses the type from the name; aiohttp uploads say octet-stream.
            guessed = mimetypes.guess_type(source.filename or "")[0]
            content["document"] = self._document(source.filename, guessed or source.content_type, source.size)
        else:
            content["document"] = self._document("file", None, 1)
        return self._store("sendDocument", params, content, files)

    async def _answer_callback_query(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        query_id = _require(params, "callback_query_id")
        if query_id not in self._pending_callbacks:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self._pending_callbacks.discard(query_id)
        self.answered_callbacks.append(params)
        return True

    def _editable(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: inline messages are not supported by the fake")
        chat_id = _require(params, "chat_id")
        message_id = _require(params, "message_id")
        message = self._messages.get(_chat_key(chat_id), {}).get(int(message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    async def _edit_message_reply_markup(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._editable(params)
        markup = self._check_markup(params)
        if markup is not None and not markup.get("inline_keyboard"):
            markup = None
        if message.get("reply_markup") == markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    async def _edit_message_text(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        message = self._editable(params)
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        visible = self._render(text, params.get("parse_mode"))
        if utf16_len(visible) > MESSAGE_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        markup = self._check_markup(params)
        if message.get("text") == visible and message.get("reply_markup") == markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        message["text"] = visible
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return scope.get("type", "default"), params.get("language_code") or ""

    async def _set_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not _COMMAND.match(command.get("command", "")):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        language = params.get("language_code")
        if language is not None and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError(400, "Bad Request: LANG_CODE_INVALID")
        self.commands[self._commands_key(params)] = commands
        return True

    async def _get_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.commands.get(self._commands_key(params), [])

    async def _delete_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.commands.pop(self._commands_key(params), None)
        return True

    async def _send_chat_action(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        _require(params, "chat_id")
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append(params)
        return True


def _chat_key(chat_id: int | str) -> int | str:
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _require(params: dict[str, Any], name: str) -> Any:
    if params.get(name) in (None, ""):
        raise ApiError(400, f"Bad Request: {name} is empty")
    return params[name]


def _decode(name: str, value: str) -> Any:
    if name == "chat_id":
        return _chat_key(value)
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: wrong parameter {name}") from None
    if name in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from query string, JSON, urlencoded or multipart bodies, as Telegram does."""
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    raw: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        raw.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                files[key] = UploadedFile(key, value.filename, len(data), value.content_type)
            else:
                raw[key] = value
    for key, value in raw.items():
        try:
            params[key] = _decode(key, value)
        except ApiError:
            params[key] = value
    return params, files


class LoopbackSession(AiohttpSession):
    """aiogram's own HTTP session, minus the 250 ms grace sleep on close.

    ``AiohttpSession.close`` waits for SSL connections to shut down; on plain-HTTP loopback
    there are none, and the sleep would add a quarter second to every test. Sessions are
    tracked through the public ``create_session`` hook, so requests go through aiogram
    unchanged.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._opened: list[ClientSession] = []

    async def create_session(self) -> ClientSession:
        session = await super().create_session()
        if session not in self._opened:
            self._opened.append(session)
        return session

    async def close(self) -> None:
        for session in self._opened:
            if not session.closed:
                await session.close()
        self._opened.clear()


def make_test_bot(server: FakeTelegramServer, *, timeout: float = 5.0) -> Bot:
    """A real aiogram ``Bot`` whose HTTP goes to ``server`` (caller closes ``bot.session``)."""
    session = LoopbackSession(api=TelegramAPIServer.from_base(server.base_url), timeout=timeout)
    return Bot(token=server.token, session=session)
