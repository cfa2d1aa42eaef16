"""Serving the web on loopback for tests, and signing in the way a person would.

A real aiohttp server on an ephemeral port and a real HTTP client (cookies and all): the
tests see exactly what a browser would, including headers, redirects and status codes.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from hotline.deps import App
from hotline.services.signin import create_signin_link
from hotline.web.app import build_web_app
from hotline.web.state import STATE, WebState
from storage.models import Person, Ticket

if TYPE_CHECKING:
    from tests.browser.world import World

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@dataclass
class Served:
    url: str
    state: WebState
    app: App

    def client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(self.url, cookie_jar=aiohttp.CookieJar(unsafe=True))


@asynccontextmanager
async def served(app: App, *, processes: bool = False) -> AsyncIterator[Served]:
    """Figures are computed in the worker thread unless ``processes`` (a child process per
    server would cost each test a second of start-up); tests decide when, so no warm-up."""
    web_app = build_web_app(app, warm=False, processes=processes)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Served(f"http://127.0.0.1:{port}", web_app[STATE], app)
    finally:
        await runner.cleanup()


async def signin_link(app: App, person: Person) -> str:
    async with app.uow() as uow:
        fresh = await uow.people.get(person.id)
        assert fresh is not None
        link = await create_signin_link(uow, app, fresh)
        await uow.commit()
    return link


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF field on the page"
    return html.unescape(found.group(1))


async def sign_in(client: aiohttp.ClientSession, app: App, person: Person) -> None:
    """Open the link, press the button: the session cookie lands in the client's jar."""
    link = await signin_link(app, person)
    async with client.get(path_of(link)) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    token = html.unescape(_TOKEN.search(page).group(1))  # type: ignore[union-attr]
    async with client.post("/signin", data={"token": token, "csrf": csrf_of(page)},
                           allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/web/"


@asynccontextmanager
async def world_site(pg_url: str | None, folder: Path, **world: object
                     ) -> AsyncIterator[tuple[World, Served]]:
    """A world (``tests.browser.world.world_app`` with ``world``'s options) and the web
    serving it: what module-scoped page fixtures share."""
    from tests.browser.world import world_app

    async with world_app(pg_url, folder, **world) as built:  # type: ignore[arg-type]
        async with served(built.app) as server:
            yield built, server


@asynccontextmanager
async def one_ticket_site(pg_url: str | None, folder: Path, text: str
                          ) -> AsyncIterator[tuple[World, Served, Ticket]]:
    """People, one reporter's ticket filed with ``text``, and the web serving them: the small
    read-only site that module-scoped fixtures share."""
    from tests.browser.world import local, world_app
    from tests.factories import file

    start = local(2026, 12, 7, 9)
    async with world_app(pg_url, folder, start=start, end=start, history=False) as world:
        ticket = await file(world.app, world.reporter[0], world.reporter[1], text, category="data")
        world.own_refs.append(ticket.ref)
        async with served(world.app) as server:
            yield world, server, ticket
