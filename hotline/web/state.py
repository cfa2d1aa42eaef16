"""Everything the web handlers share, built once per server and kept on the aiohttp app.

No module-level globals: ``setup_web`` builds one ``WebState`` from the ``App`` and stores it
under ``STATE``; handlers read it from ``request.app``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hotline.deps import App
from hotline.digests.model import Digest
from hotline.errors import ConfigError
from hotline.web.cache import Entry, FigureCache
from hotline.web.figures import Figures, Snapshot, Watermark, filtered_digest, watermark
from hotline.web.params import Filters, resolve_period
from hotline.web.ratelimit import RateLimiter
from hotline.web.readdb import ReadApp, ReadDatabase
from hotline.web.render import Renderer
from hotline.web.worker import Worker

#: The watermark read during the current request (each request runs in its own task, so its
#: own context): a page asks for it several times (figures, filtered digest, pending
#: extensions) and should see one version of the data, read once.
_REQUEST_MARK: ContextVar[list[Watermark] | None] = ContextVar("hotline_web_mark", default=None)
#: Rendered pages kept: public ones (a few per language and version) and signed-in ones.
PUBLIC_PAGES = 32
PRIVATE_PAGES = 64
#: The public board's periods, side by side on one page, all from one ``Snapshot``.
BOARD_SPECS = ("week", "month", "year")
#: Board snapshots kept by version, so a page's chart is drawn from that page's snapshot.
BOARD_VERSIONS = 8


class Lru:
    """Rendered pages by key, the least recently used dropped beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> bytes | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: Hashable, body: bytes) -> None:
        self._items[key] = body
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def begin_request() -> None:
    """Called by the middleware for each request of ours."""
    _REQUEST_MARK.set([])


@dataclass
class WebState:
    app: App
    read: ReadDatabase
    renderer: Renderer
    figures: FigureCache
    charts: FigureCache
    status_limiter: RateLimiter
    signin_limiter: RateLimiter
    worker: Worker
    trusted_proxies: list[Any]
    secret: bytes = b""
    extra_closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    pages: Lru = field(default_factory=lambda: Lru(PUBLIC_PAGES))
    private_pages: Lru = field(default_factory=lambda: Lru(PRIVATE_PAGES))
    #: Sorted ticket rows per (figures, filter): see ``views.staff_rows``.
    row_lists: dict[Hashable, tuple[Figures, list[Any]]] = field(default_factory=dict)
    #: Recent board snapshots by version token (``board_snapshot``).
    boards: OrderedDict[str, Snapshot] = field(default_factory=OrderedDict)
    _mark_task: asyncio.Task[Watermark] | None = None

    @property
    def reader(self) -> ReadApp:
        """Deps and read sessions on the serving loop (light queries only; see ``worker``)."""
        return self.read.reader(self.app)

    @property
    def tz(self) -> str:
        return self.app.settings.timezone

    async def watermark(self) -> Watermark:
        """The newest event id and red-alert state. Requests arriving while the query runs
        share its answer, so a burst of page views costs one query, not one each; within one
        request it is read once."""
        memo = _REQUEST_MARK.get()
        if memo:
            return memo[0]
        task = self._mark_task
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._read_watermark())
            self._mark_task = task
        mark = await asyncio.shield(task)
        if memo is not None:
            memo.append(mark)
        return mark

    async def _read_watermark(self) -> Watermark:
        async with self.read.sessions() as session:
            return await watermark(session)

    async def period_entry(self, spec: str, *, allow_stale: bool = False,
                           mark: Watermark | None = None) -> Entry[Figures]:
        """Whole-programme figures of a period spec, from the cache when still valid.

        Periods still running are keyed by their spec and expire after ``web_cache_seconds``;
        finished ones only change with new events.
        """
        now = self.app.clock.now()
        chosen = resolve_period(spec, now, self.tz)
        running = chosen.end >= now
        key = ("figures", spec if running else (chosen.start, chosen.end))
        if mark is None:
            mark = await self.watermark()

        async def compute() -> Figures:
            fresh = resolve_period(spec, self.app.clock.now(), self.tz) if running else chosen
            return await self.worker.figures(fresh)

        return await self.figures.get(key, mark, compute, expires=running, allow_stale=allow_stale)

    async def period_figures(self, spec: str, *, allow_stale: bool = False) -> tuple[Figures, Any]:
        """The figures and the moment they were computed."""
        entry = await self.period_entry(spec, allow_stale=allow_stale)
        return entry.value, entry.computed_at

    async def board_snapshot(self, mark: Watermark | None = None) -> tuple[Snapshot, str]:
        """The public board's figures (``BOARD_SPECS`` and the year's weekly trend) from one
        read at one instant, and a version token naming them.

        Served stale while a fresh one is computed, like the board always was; the token
        goes into the board's chart link, so the chart is drawn from the very snapshot the
        page's numbers come from (``snapshot_for``), however the cache has moved on since.
        """
        if mark is None:
            mark = await self.watermark()

        async def compute() -> Snapshot:
            at = self.app.clock.now()
            periods = tuple(resolve_period(spec, at, self.tz) for spec in BOARD_SPECS)
            return await self.worker.snapshot(periods, periods[-1])

        entry = await self.figures.get(("board",), mark, compute, allow_stale=True)
        token = hashlib.sha256(repr((entry.computed_at, entry.watermark)).encode()).hexdigest()[:16]
        if token not in self.boards:
            self.boards[token] = entry.value
            while len(self.boards) > BOARD_VERSIONS:
                self.boards.popitem(last=False)
        return entry.value, token

    def snapshot_for(self, token: str) -> Snapshot | None:
        return self.boards.get(token)

    def page(self, key: Hashable) -> bytes | None:
        return self.pages.get(key)

    def keep_page(self, key: Hashable, body: bytes) -> None:
        """Rendered public pages, keyed by the figures they show (so never stale by themselves)."""
        self.pages.put(key, body)

    def private_page(self, key: Hashable) -> bytes | None:
        """A signed-in page rendered before for the same session, person, address and data
        (the key says which; see ``pages.private_key``), apart from the public ones so that
        many staff pages cannot push the board out."""
        return self.private_pages.get(key)

    def keep_private_page(self, key: Hashable, body: bytes) -> None:
        self.private_pages.put(key, body)

    async def filtered(self, base: Figures, filters: Filters) -> Digest:
        """The digest of ``base``'s period narrowed to ``filters`` (the whole one if none),
        cached like the figures it derives from."""
        if not filters.narrows_tickets:
            return base.digest
        mark = await self.watermark()
        key = ("filtered", filters, base.period.start, base.period.end)

        async def compute() -> Digest:
            return await self.worker.call(lambda reader: filtered_digest(reader, base, filters))

        return (await self.figures.get(key, mark, compute, expires=False)).value

    async def close(self) -> None:
        await self.figures.close()
        await self.charts.close()
        for closer in self.extra_closers:
            await closer()
        await self.worker.close()
        await self.read.close()


def parse_proxies(text: str) -> list[Any]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                f"invalid HOTLINE_WEB_FORWARDED_ALLOW_IPS entry {part!r}: use addresses or networks"
            ) from None
    return out


def build_state(app: App, *, processes: bool = True) -> WebState:
    settings = app.settings
    ttl = settings.web_cache_seconds
    return WebState(
        app=app,
        read=ReadDatabase(app.settings, app.sessions),
        renderer=Renderer(settings),
        figures=FigureCache(app.clock, ttl, max_entries=48),
        charts=FigureCache(app.clock, ttl, max_entries=64),
        status_limiter=RateLimiter(settings.web_status_per_minute),
        signin_limiter=RateLimiter(30),
        worker=Worker(app, processes=processes),
        trusted_proxies=parse_proxies(settings.web_forwarded_allow_ips),
    )


STATE: web.AppKey[WebState] = web.AppKey("hotline_web_state", WebState)


def state_of(request: web.Request) -> WebState:
    return request.app[STATE]
