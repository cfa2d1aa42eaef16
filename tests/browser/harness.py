"""Debian's chromium driven by Playwright, in a thread of its own.

Playwright's sync API binds its objects to the thread that started it, and the tests are
asyncio coroutines serving the web on their own event loop; so one worker thread owns the
browser for the whole module (one launch per module), and tests hand it small functions with
``await browser.run(fn)`` while their loop keeps serving the pages the browser asks for.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    return shutil.which("chromium")


class Browser:
    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._pw: Any = None
        self.browser: Any = None
        self._thread.submit(self._start).result(timeout=60)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=chromium_path(), args=ARGS,
                                                headless=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def context(self, **options: Any) -> Any:
        """Call inside ``run``: a fresh profile (no cookies shared between people)."""
        options.setdefault("viewport", {"width": 1280, "height": 900})
        options.setdefault("accept_downloads", True)
        return self.browser.new_context(**options)

    def close(self) -> None:
        def stop() -> None:
            if self.browser is not None:
                self.browser.close()
            if self._pw is not None:
                self._pw.stop()

        self._thread.submit(stop).result(timeout=60)
        self._thread.shutdown(wait=True)
