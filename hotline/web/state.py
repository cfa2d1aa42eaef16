"""Everything the web handlers share, built once per server and kept on the aiohttp app.

No module-level globals: ``setup_web`` builds one ``WebState`` from the ``App`` and stores it
under ``STATE``; handlers read it from ``request.app``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from hotline.app import App, Deps
from hotline.digests.period import Period
from hotline.errors import ConfigError
from hotline.web.cache import FigureCache
from hotline.web.figures import Figures, Watermark, compute_figures, watermark
from hotline.web.params import resolve_period
from hotline.web.ratelimit import RateLimiter
from hotline.web.readdb import ReadDatabase
from hotline.web.render import Renderer


@dataclass
class ReadApp(Deps):
    """The ``Deps`` plus read-only sessions: what the digest loaders expect of an ``app``."""

    sessions: Any = None


@dataclass
class WebState:
    app: App
    read: ReadDatabase
    renderer: Renderer
    figures: FigureCache
    charts: FigureCache
    status_limiter: RateLimiter
    signin_limiter: RateLimiter
    executor: ThreadPoolExecutor
    trusted_proxies: list[Any]
    secret: bytes = b""
    extra_closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def reader(self) -> ReadApp:
        app = self.app
        return ReadApp(settings=app.settings, clock=app.clock, calendar=app.calendar,
                       taxonomy=app.taxonomy, sessions=self.read.sessions)

    @property
    def tz(self) -> str:
        return self.app.settings.timezone

    async def watermark(self) -> Watermark:
        async with self.read.sessions() as session:
            return await watermark(session)

    async def period_figures(self, spec: str, *, allow_stale: bool = False,
                             period: Period | None = None) -> tuple[Figures, Any]:
        """Whole-programme figures of a period spec, from the cache when still valid.

        Returns the figures and the moment they were computed. Periods still running are
        keyed by their spec and expire after ``web_cache_seconds``; finished ones only
        change with new events.
        """
        now = self.app.clock.now()
        chosen = period or resolve_period(spec, now, self.tz)
        running = chosen.end >= now
        key = ("figures", spec if running else (chosen.start, chosen.end))
        mark = await self.watermark()

        async def compute() -> Figures:
            fresh = resolve_period(spec, self.app.clock.now(), self.tz) if running else chosen
            return await compute_figures(self.read.sessions, self.reader, fresh, self.executor)

        entry = await self.figures.get(key, mark, compute, expires=running, allow_stale=allow_stale)
        return entry.value, entry.computed_at

    async def close(self) -> None:
        await self.figures.close()
        await self.charts.close()
        for closer in self.extra_closers:
            await closer()
        self.executor.shutdown(wait=False, cancel_futures=True)
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


def build_state(app: App) -> WebState:
    settings = app.settings
    ttl = settings.web_cache_seconds
    return WebState(
        app=app,
        read=ReadDatabase(app),
        renderer=Renderer(settings),
        figures=FigureCache(app.clock, ttl, max_entries=24),
        charts=FigureCache(app.clock, ttl, max_entries=64),
        status_limiter=RateLimiter(settings.web_status_per_minute),
        signin_limiter=RateLimiter(30),
        executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotline-web"),
        trusted_proxies=parse_proxies(settings.web_forwarded_allow_ips),
    )


STATE: web.AppKey[WebState] = web.AppKey("hotline_web_state", WebState)


def state_of(request: web.Request) -> WebState:
    return request.app[STATE]
