"""One "as of" rule for every surface, on a generated history.

A working group's history grows through the real services; at 20 random instants inside the
running week 2026-W49 and the running month of December 2026, the digest a leader asks for
(``hotline digest --week/--month``), the dashboard's API and the public board give identical
figures for the same period, each titled as unfinished ("2026-W49, đến thứ Năm 03/12 14:35"),
with overdue, late and RAG judged at that instant. When the period has ended, the same
surfaces equal the scheduled digest sent on the Monday (or the 1st) after it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
import pytest_asyncio

from hotline.digests import build_digest
from hotline.digests import period as P
from hotline.digests.model import Digest
from hotline.digests.render import telegram_text
from hotline.digests.schedule import period_for, send_scheduled_digests
from hotline.web.ratelimit import RateLimiter
from tests.browser import world as W
from tests.browser.webtest import Served, sign_in, world_site
from tests.integration.test_web_numbers import _assert_dashboard_is_digest

pytestmark = [pytest.mark.timeout(600), pytest.mark.asyncio(loop_scope="module")]

START = W.local(2026, 11, 9, 8)
#: December's first working morning; W49 (Mon 30 Nov - Sun 6 Dec) and December both run
#: from here until Monday 7 December 00:00.
FIRST = W.local(2026, 12, 1, 7)
WEEK_END = W.local(2026, 12, 7, 0)
INSTANTS = 20


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[tuple[W.World, Served]]:
    folder = tmp_path_factory.mktemp("as-of")
    async with world_site(pg_url, folder, start=START, end=FIRST) as found:
        yield found


def _instants(rng: random.Random) -> list[datetime]:
    """20 instants between ``FIRST`` and the week's end, at least an hour apart (longer than
    the figure cache's life, so every surface is recomputed for each)."""
    hours = int((WEEK_END - FIRST).total_seconds() // 3600)
    picked = sorted(rng.sample(range(hours), INSTANTS))
    return [FIRST + timedelta(hours=h, minutes=rng.randrange(60), seconds=rng.randrange(60))
            for h in picked]


async def _json(client: aiohttp.ClientSession, path: str) -> Any:
    async with client.get(path) as response:
        body = await response.json()
        assert response.status == 200, body
        return body


def _assert_board_is_digest(block: dict[str, Any], digest: Digest) -> None:
    """The public board's counts for a period are the digest's."""
    totals = block["totals"]
    assert totals["received"] == digest.flow.new
    assert totals["resolved"] == digest.flow.resolved
    assert totals["overdue"] == digest.stock.overdue
    assert totals["extensions_granted"] == digest.extensions.approved
    assert totals["red_alerts"] == sum(1 for g in digest.groups if g.red_alert)
    assert totals["satisfaction"] == {"count": digest.satisfaction.count,
                                      "mean": digest.satisfaction.mean}
    by_code = {g["code"]: g for g in block["groups"]}
    for g in digest.groups:
        row = by_code[g.code]
        assert (row["received"], row["resolved"], row["overdue"], row["extensions_granted"],
                row["red_alert"]) == (g.flow.new, g.flow.resolved, g.stock.overdue,
                                      g.extensions.approved, g.red_alert), g.code


def _assert_titled(period_json: dict[str, Any], period: P.Period) -> None:
    assert period_json["finished"] is period.finished
    assert period_json["title_vi"] == P.display_label(period, "vi")
    assert period_json["title_en"] == P.display_label(period, "en")
    if period.as_of is not None:
        assert datetime.fromisoformat(period_json["as_of"]) == period.as_of
        assert ", đến thứ" in period_json["title_vi"] or ", đến Chủ nhật" in period_json["title_vi"]


async def _board(server: Served, client: aiohttp.ClientSession) -> dict[str, Any]:
    """The board once its snapshot has caught up (it is served stale while it refreshes)."""
    await _json(client, "/api/v1/board")
    await server.state.figures.idle()
    return await _json(client, "/api/v1/board")


async def test_every_surface_gives_one_figure_at_any_moment(
        site: tuple[W.World, Served], tmp_path: Path) -> None:
    world, server = site
    app, clock = world.app, world.clock
    rng = random.Random(19)
    instants = _instants(rng)
    async def staff_json(path: str) -> Any:
        """As the coordinator, signed in afresh (a session lasts hours; the clock jumps)."""
        # The sign-in limiter counts wall-clock minutes (30 a minute per address); this test
        # signs in some 45 times in well under a minute on a quiet machine, so each sign-in
        # starts from a fresh limiter, as it would after the hours the clock has jumped.
        server.state.signin_limiter = RateLimiter(30)
        async with server.client() as staff:
            await sign_in(staff, app, world.coordinator)
            return await _json(staff, path)

    async def after_the_period(kind: Literal["week", "month"], when: datetime, label: str,
                               **pace: int) -> None:
        await W.grow(world, rng, when, **pace)
        assert await send_scheduled_digests(app, when, kind) > 0
        scheduled = period_for(kind, when, app.settings.timezone)
        assert scheduled.label == label and scheduled.finished
        dashboard = await staff_json(f"/api/v1/dashboard?period={label}")
        _assert_dashboard_is_digest(dashboard, await build_digest(app, scheduled))
        _assert_titled(dashboard["period"], scheduled)
        assert dashboard["period"]["title_vi"] == label

    async with server.client() as public:
        for at in instants:
            await W.grow(world, rng, at)
            assert clock.now() == at
            week = P.as_of(P.week_of(at), at)
            month = P.as_of(P.month(2026, 12), at)
            assert not week.finished and not month.finished and week.label == "2026-W49"
            digests = {"week": await build_digest(app, week), "month": await build_digest(app, month)}
            board = await _board(server, public)
            assert datetime.fromisoformat(board["as_of"]) == at
            for spec, digest in digests.items():
                dashboard = await staff_json(f"/api/v1/dashboard?period={spec}")
                _assert_dashboard_is_digest(dashboard, digest)
                _assert_titled(dashboard["period"], digest.period)
                assert datetime.fromisoformat(dashboard["as_of"]) == at
                _assert_board_is_digest(board[spec], digest)
                _assert_titled(board[spec]["period"], digest.period)
                title = P.display_label(digest.period, "vi")
                assert title in telegram_text(digest, "vi", app.taxonomy)
            async with public.get("/board") as response:
                page = await response.text()
            assert P.display_label(week, "vi") in page and P.display_label(month, "vi") in page
            async with public.get(f"/board/chart.png?lang=vi&v={board['version']}") as response:
                assert response.status == 200 and response.content_type == "image/png"

        # The week has ended: on Monday morning the scheduled digest goes out, and every
        # surface now shows that digest's figures for 2026-W49, without an "as of" label.
        await after_the_period("week", W.local(2026, 12, 7, 8, 0), "2026-W49")
        # And December, once it has ended, equals the monthly digest sent on 1 January.
        await after_the_period("month", W.local(2027, 1, 1, 8, 0), "2026-12", per_day=1, work=2)
