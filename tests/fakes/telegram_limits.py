"""A fake Bot API that enforces Telegram's sending limits, for the outbox benchmark and tests.

Telegram refuses a bot that sends more than about 30 messages in one second overall, or more
than one message per second to one chat, with ``429 Too Many Requests`` and
``parameters.retry_after``. This server does exactly that, strictly, counting *arrivals* (the
moment each request reaches its handler, on its own monotonic clock):

- a ``sendMessage`` is refused when 30 accepted messages of the same bot token already
  arrived within the last second (so no 1-second window, wherever it starts, ever holds more
  than 30), or when the same chat's previous accepted message arrived less than 1 s ago;
- refused messages are not delivered and do not count towards the limits;
- ``retry_after`` is the whole seconds until the refused message would have been accepted
  (at least 1), as Telegram rounds.

Anything else the dispatcher or ``hotline run`` may call (``getMe``, ``setMyCommands``,
``setWebhook``, ``deleteWebhook``, ``getUpdates``) gets a plain success. Stats (every accepted
and refused message, with its arrival time) are served at ``GET /_stats`` and cleared by
``POST /_reset``, so the server can run as an independent process
(``python -m tests.fakes.telegram_limits --port 0 --port-file FILE``), which keeps its clock
and its event loop apart from the workers it judges; or in-process (``async with
LimitedTelegramServer() as server``) for short tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

#: Telegram's documented limits (messages; seconds).
OVERALL_PER_SECOND = 30
PER_CHAT_INTERVAL = 1.0


@dataclass
class _Bot:
    window: deque[float] = field(default_factory=deque)
    last_by_chat: dict[str, float] = field(default_factory=dict)
    accepted: list[tuple[float, str, str]] = field(default_factory=list)
    refused: list[tuple[float, str, str]] = field(default_factory=list)
    next_message_id: int = 1


class LimitedTelegramServer:
    """The enforcing fake; ``base_url`` is what ``create_bot(..., api_url=...)`` takes."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 overall_per_second: int = OVERALL_PER_SECOND,
                 per_chat_interval: float = PER_CHAT_INTERVAL) -> None:
        self.host = host
        self.port = port
        self.overall = overall_per_second
        self.per_chat = per_chat_interval
        self.bots: dict[str, _Bot] = {}
        self.started = time.monotonic()
        self._runner: web.AppRunner | None = None

    # --- the limits ---------------------------------------------------------------------------
    def judge(self, token: str, chat: str, text: str, now: float | None = None) -> float | None:
        """Accept (``None``) or refuse (the ``retry_after`` seconds) one message arriving now."""
        now = time.monotonic() if now is None else now
        bot = self.bots.setdefault(token, _Bot())
        window = bot.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        wait = 0.0
        if len(window) >= self.overall:
            wait = window[len(window) - self.overall] + 1.0 - now
        last = bot.last_by_chat.get(chat)
        if last is not None and now - last < self.per_chat:
            wait = max(wait, last + self.per_chat - now)
        stamp = now - self.started
        if wait > 0:
            bot.refused.append((stamp, chat, text))
            return float(max(1, math.ceil(wait)))
        window.append(now)
        bot.last_by_chat[chat] = now
        bot.accepted.append((stamp, chat, text))
        return None

    def stats(self) -> dict[str, Any]:
        """Every bot's accepted and refused messages: ``[seconds since start, chat, text]``."""
        return {token[:12]: {"accepted": bot.accepted, "refused": bot.refused}
                for token, bot in self.bots.items()}

    # --- HTTP -----------------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()  # before reading the body: the arrival is what counts
        token = request.match_info["token"]
        method = request.match_info["method"].lower()
        params: dict[str, Any] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                params = await request.json()
            else:
                params = dict(await request.post())
        if method == "sendmessage":
            chat = str(params.get("chat_id", ""))
            text = str(params.get("text", ""))
            retry_after = self.judge(token, chat, text, arrived)
            if retry_after is not None:
                return web.json_response({
                    "ok": False, "error_code": 429,
                    "description": f"Too Many Requests: retry after {int(retry_after)}",
                    "parameters": {"retry_after": int(retry_after)},
                }, status=429)
            bot = self.bots[token]
            message_id, bot.next_message_id = bot.next_message_id, bot.next_message_id + 1
            chat_id: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
            return web.json_response({"ok": True, "result": {
                "message_id": message_id, "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"}, "text": text}})
        if method == "getme":
            bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
            return web.json_response({"ok": True, "result": {
                "id": bot_id, "is_bot": True, "first_name": "Hotline", "username": "hotline_bot"}})
        if method == "getupdates":
            await asyncio.sleep(min(float(params.get("timeout") or 0), 1.0))
            return web.json_response({"ok": True, "result": []})
        return web.json_response({"ok": True, "result": True})

    async def _stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, _request: web.Request) -> web.Response:
        self.bots.clear()
        self.started = time.monotonic()
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> LimitedTelegramServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


class LimitedTelegramProcess:
    """The enforcing fake as a process of its own, as Telegram's servers are not this machine.

    Started with a raised scheduling priority (``nice`` -10) when the user may: a busy
    machine otherwise delays the fake's own reading of requests, which stamps arrivals that
    were spread apart as one bunch (and judges them too strictly) -- real Telegram does not
    share our CPU. ``prioritised`` says whether that worked.
    """

    def __init__(self, priority: int = -10) -> None:
        import subprocess
        import sys
        import tempfile

        self._folder = tempfile.TemporaryDirectory()
        port_file = Path(self._folder.name) / "port"
        self.prioritised = True
        try:
            os.nice(0)
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.telegram_limits", "--port", "0",
                 "--port-file", str(port_file)],
                cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL,
                preexec_fn=lambda: os.nice(priority))  # only os.nice: safe before exec
        except (OSError, subprocess.SubprocessError):
            self.prioritised = False
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.telegram_limits", "--port", "0",
                 "--port-file", str(port_file)],
                cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("the fake Bot API process did not start")
            time.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{port_file.read_text()}"

    async def reset(self) -> None:
        from aiohttp import ClientSession

        async with ClientSession() as http, http.post(self.base_url + "/_reset") as response:
            response.raise_for_status()

    async def stats(self) -> dict[str, Any]:
        from aiohttp import ClientSession

        async with ClientSession() as http, http.get(self.base_url + "/_stats") as response:
            return await response.json()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self._folder.cleanup()


def summarise(accepted: list[list[Any]], refused: list[list[Any]]) -> dict[str, float]:
    """Figures a client of ``/_stats`` wants: the densest 1-second window and the tightest
    per-chat gap among accepted messages, and how many were refused."""
    times = sorted(float(a[0]) for a in accepted)
    densest = 0
    start = 0
    for end, t in enumerate(times):
        while times[start] <= t - 1.0:
            start += 1
        densest = max(densest, end - start + 1)
    by_chat: dict[str, list[float]] = {}
    for t, chat, _ in accepted:
        by_chat.setdefault(str(chat), []).append(float(t))
    gaps = [b - a for ts in by_chat.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)]
    return {"accepted": len(times), "refused": len(refused), "densest_window": densest,
            "min_chat_gap": min(gaps) if gaps else math.inf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    args = parser.parse_args()

    async def serve() -> None:
        server = LimitedTelegramServer(host=args.host, port=args.port)
        await server.start()
        if args.port_file is not None:
            args.port_file.write_text(str(server.port))
        print(json.dumps({"port": server.port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
