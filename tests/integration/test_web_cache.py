"""Figures follow new events: the board's cache, the dashboard's freshness, single flight,
and a board count (resolved on time) checked on a scenario small enough to reason about.

Each test gets its own database and server (they write).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from hotline.deps import App
from hotline.services import tickets
from tests.browser import world as W
from tests.browser.webtest import Served, served, sign_in
from tests.factories import file


@pytest.fixture
async def site(app: App) -> AsyncIterator[tuple[W.World, Served]]:
    world = await W.people(app, members=1)
    async with served(app) as server:
        yield world, server


async def test_board_counts_resolved_on_time(site: tuple[W.World, Served]) -> None:
    world, server = site
    app = world.app
    first = await file(app, world.reporter[0], world.reporter[1], W.TEXTS[3].format(n=1), category="data")
    second = await file(app, world.other[0], world.other[1], W.TEXTS[1].format(n=2), category="data")
    member = world.members["mps"][0]
    async with app.uow() as uow:  # resolved at once: on time
        t = await uow.tickets.by_ref(first.ref, for_update=True)
        m = await uow.people.get(member.id)
        await tickets.acknowledge(uow, app, t, m)  # type: ignore[arg-type]
        await tickets.resolve(uow, app, t, m, "xong")  # type: ignore[arg-type]
        await uow.commit()
    app.clock.advance(timedelta(days=20))  # type: ignore[attr-defined]
    async with app.uow() as uow:  # resolved three weeks later: late
        t = await uow.tickets.by_ref(second.ref, for_update=True)
        m = await uow.people.get(member.id)
        await tickets.acknowledge(uow, app, t, m)  # type: ignore[arg-type]
        await tickets.resolve(uow, app, t, m, "xong")  # type: ignore[arg-type]
        await uow.commit()
    async with server.client() as client:
        async with client.get("/api/v1/board") as response:
            board = await response.json()
    mps = next(g for g in board["year"]["groups"] if g["code"] == "mps")
    assert (mps["received"], mps["resolved"], mps["resolved_on_time"]) == (2, 2, 1)


async def test_board_cache_is_invalidated_by_new_events(site: tuple[W.World, Served]) -> None:
    """New events invalidate the board's figures; they are recomputed at most once per ttl,
    in the background, the previous ones being served meanwhile."""
    world, server = site
    state = server.state
    async with server.client() as client:
        async with client.get("/api/v1/board") as response:
            first = await response.json()
        computed = state.figures.computations
        async with client.get("/api/v1/board") as response:
            assert await response.json() == first
        assert state.figures.computations == computed  # served from the cache
        await file(world.app, world.other[0], world.other[1], W.TEXTS[4].format(n=5), category="security")
        async with client.get("/api/v1/board") as response:
            early = await response.json()  # within a ttl of the last computation: kept
        assert state.figures.computations == computed
        world.app.clock.advance(timedelta(seconds=world.app.settings.web_cache_seconds))  # type: ignore[attr-defined]
        async with client.get("/api/v1/board") as response:
            stale = await response.json()  # the previous figures while the new ones are computed
        await state.figures.idle()
        async with client.get("/api/v1/board") as response:
            fresh = await response.json()
    received = first["year"]["totals"]["received"]
    assert early["year"]["totals"]["received"] == stale["year"]["totals"]["received"] == received
    assert fresh["year"]["totals"]["received"] == received + 1
    assert state.figures.computations > computed


async def test_dashboard_numbers_follow_new_events_at_once(site: tuple[W.World, Served]) -> None:
    world, server = site
    async with server.client() as client:
        await sign_in(client, world.app, world.leader)
        async with client.get("/api/v1/dashboard") as response:
            before = (await response.json())["totals"]["new"]
        await file(world.app, world.other[0], world.other[1], W.TEXTS[4].format(n=6), category="security")
        async with client.get("/api/v1/dashboard") as response:
            assert (await response.json())["totals"]["new"] == before + 1


async def test_two_requests_share_one_computation(site: tuple[W.World, Served]) -> None:
    _, server = site
    state = server.state
    async with server.client() as a, server.client() as b:
        async def get(client: aiohttp.ClientSession) -> int:
            async with client.get("/api/v1/board") as response:
                return response.status

        assert await asyncio.gather(get(a), get(b)) == [200, 200]
    assert state.figures.computations == 1  # one board snapshot (week, month, year, trend)


async def test_the_child_process_computes_dies_and_stops_with_the_server(app: App) -> None:
    """Production computes whole-period figures in a child process: the same numbers as the
    worker thread, rows and digest alike. A killed child costs one computation in the thread,
    then a new child takes over; stopping the server stops the child."""
    import os
    import signal

    from hotline.web.figures import compute_figures
    from hotline.web.params import resolve_period

    world = await W.people(app, members=1)
    for n, (who, category) in enumerate(((world.reporter, "data"), (world.other, "legal"),
                                         (world.reporter, "funding"))):
        await file(app, who[0], who[1], W.TEXTS[n].format(n=n), category=category)
    period = resolve_period("month", app.clock.now(), app.settings.timezone)
    async with served(app, processes=True) as server:
        worker = server.state.worker
        in_child = await worker.figures(period)
        [pid] = worker.child_pids()  # it really went through the process pool
        in_thread = await worker.call(lambda reader: compute_figures(reader, period))
        assert in_child.digest == in_thread.digest
        assert in_child.rows == in_thread.rows and len(in_child.rows) == 3
        assert in_child.extras == in_thread.extras

        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        assert (await worker.figures(period)).digest == in_child.digest  # in the thread
        assert worker.child_pids() == []
        assert (await worker.figures(period)).digest == in_child.digest  # a new child
        [second] = worker.child_pids()
        assert second != pid
    for _ in range(50):  # terminated at cleanup: gone (reaped) within moments
        try:
            os.kill(second, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the figure process outlived the server")


async def test_signed_in_pages_are_kept_per_session_person_and_data(site: tuple[W.World, Served]) -> None:
    """A reload with nothing changed is the page rendered before; another session, a new event
    or a change to the person (no event) each get a page of their own."""
    from tests.browser.webtest import csrf_of

    world, server = site
    app, state = world.app, server.state

    async def text(client: aiohttp.ClientSession, path: str) -> str:
        async with client.get(path) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            return await response.text()

    async with server.client() as a, server.client() as b:
        await sign_in(a, app, world.coordinator)
        await sign_in(b, app, world.coordinator)
        first = await text(a, "/web/")
        computations = state.figures.computations
        assert await text(a, "/web/") == first
        assert len(state.private_pages) == 1 and state.figures.computations == computations
        assert csrf_of(await text(b, "/web/")) != csrf_of(first)  # its own session's form
        listing = await text(a, "/web/tickets")
        await file(app, world.other[0], world.other[1], W.TEXTS[4].format(n=7), category="security")
        assert await text(a, "/web/") != first
        assert await text(a, "/web/tickets") != listing
        async with app.uow() as uow:
            person = await uow.people.get(world.coordinator.id)
            assert person is not None
            person.display_name = "Renamed Coordinator"
            await uow.commit()
        assert "Renamed Coordinator" in await text(a, "/web/")
