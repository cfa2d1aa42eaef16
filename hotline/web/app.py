"""Assembling the web: routes, middleware, startup/shutdown -- standalone or beside the webhooks.

``hotline web`` serves ``build_web_app(app)``. ``hotline run`` (webhook mode) already runs an
aiohttp server for the chat webhooks; it calls ``setup_web(webhook_app, app)`` on that
application before starting it, so pages, API and webhooks share one process, one port and
one database (the middleware only touches the web's own routes). In polling mode there is no
webhook server; ``WebServer`` runs the same application on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotline.deps import App
from hotline.web import api, pages, sessions
from hotline.web.middleware import web_middleware
from hotline.web.render import STATIC_DIR
from hotline.web.state import STATE, WebState, build_state

log = logging.getLogger("hotline.web")

#: Requests carry at most a small form (sign-in, sign-out).
MAX_BODY = 64 * 1024
STATIC_TYPES = {".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon"}


def _static_handler() -> Callable[[web.Request], Awaitable[web.Response]]:
    """Only the files shipped in ``templates/web/static``, read once; no directory walking."""
    files: dict[str, tuple[bytes, str]] = {}
    for path in STATIC_DIR.iterdir():
        if path.is_file() and path.suffix in STATIC_TYPES:
            files[path.name] = (path.read_bytes(), STATIC_TYPES[path.suffix])

    async def serve(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        response = web.Response(body=body, content_type=content_type)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    return serve


def add_routes(router: web.UrlDispatcher) -> None:
    """Every route is named ``web.*``: that is how the middleware recognises its own."""
    get = router.add_get
    get("/", pages.home, name="web.home")
    get("/board", pages.board, name="web.board")
    get("/board/chart.png", pages.board_chart, name="web.board_chart")
    get(r"/status/{ref}/{code}", pages.status, name="web.status")
    get(r"/signin/{token}", pages.signin_page, name="web.signin_page")
    router.add_post("/signin", pages.signin_submit, name="web.signin")
    router.add_post("/signout", pages.signout, name="web.signout")
    get("/web", pages.web_root, name="web.web_root")
    get("/web/", pages.dashboard, name="web.dashboard")
    get("/web/tickets", pages.tickets, name="web.tickets")
    get(r"/web/tickets/{ref}", pages.ticket, name="web.ticket")
    get("/web/chart.png", pages.chart, name="web.chart")
    get(r"/web/export.{fmt:xlsx|csv|json}", pages.export, name="web.export")
    get(r"/static/{name}", _static_handler(), name="web.static")
    get("/favicon.svg", _favicon, name="web.favicon")
    get("/favicon.ico", _favicon, name="web.favicon_ico")
    get("/healthz", _health, name="web.health")
    get("/api/v1/board", api.board, name="web.api_board")
    get("/api/v1/me", api.me, name="web.api_me")
    get("/api/v1/dashboard", api.dashboard, name="web.api_dashboard")
    get("/api/v1/tickets", api.tickets, name="web.api_tickets")
    get(r"/api/v1/tickets/{ref}", api.ticket, name="web.api_ticket")
    get("/api/v1/extensions/pending", api.extensions_pending, name="web.api_extensions")


#: A red square with an "H"; inline so the package needs no extra data files.
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
           b'rx="6" fill="#b91c1c"/><path d="M10 7h4v7h4V7h4v18h-4v-7h-4v7h-4z" fill="#fff"/></svg>')


async def _favicon(request: web.Request) -> web.Response:
    """Browsers ask for /favicon.ico whatever the page says; both names get the SVG."""
    response = web.Response(body=FAVICON, content_type="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def setup_web(target: web.Application, app: App, *, warm: bool = True, processes: bool = True) -> None:
    """Add the pages, API, middleware and lifecycle hooks to ``target`` (not started yet).

    ``warm`` computes the public board's figures in the background at start-up, so the first
    visitor after a restart does not wait for a year of events to be replayed. ``processes``
    computes whole-period figures in a child process (see ``worker``); tests turn it off.
    """
    state = build_state(app, processes=processes)
    target[STATE] = state
    target.middlewares.append(web_middleware)
    add_routes(target.router)
    background: list[asyncio.Task[object]] = []

    async def startup(_: web.Application) -> None:
        state.secret = await sessions.load_secret(app)
        if warm:
            background.append(asyncio.get_running_loop().create_task(_warm(state)))

    async def cleanup(_: web.Application) -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await state.close()

    target.on_startup.append(startup)
    target.on_cleanup.append(cleanup)


def build_web_app(app: App, *, warm: bool = True, processes: bool = True) -> web.Application:
    """The web on its own (``hotline web``, tests)."""
    target = web.Application(client_max_size=MAX_BODY)
    setup_web(target, app, warm=warm, processes=processes)
    return target


async def _warm(state: WebState) -> object:
    from hotline.web import views

    try:
        return await views.board(state)
    except Exception as error:  # a cold cache is not fatal: the first request will compute
        log.warning("could not warm the board figures: %s", type(error).__name__)
        return None


class WebServer:
    """Listen on ``host:port`` until stopped; used by ``hotline web`` and polling-mode ``run``."""

    def __init__(self, app: App, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(build_web_app(self.app), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("web listening on %s", self.url)

    @property
    def url(self) -> str:
        port = self.port
        if self._runner is not None and self._runner.addresses:
            port = self._runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
