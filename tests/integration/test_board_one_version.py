"""One page, one moment: every figure, table and the chart of the public board come from one
snapshot of the data (one read at one instant), even while new reports arrive and the board
is being refreshed behind the visitor's back.

Before, the board's month, year, weekly trend and chart were four cache entries computed at
different times, and a leader saw "as of 14:34, received 4" beside a chart with 5 that week.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from hotline.digests.chart import chart_png
from tests.browser import world as W
from tests.browser.webtest import Served, world_site
from tests.factories import file

pytestmark = [pytest.mark.timeout(300), pytest.mark.asyncio(loop_scope="module")]

START, END = W.local(2026, 11, 16, 8), W.local(2026, 12, 3, 14, 30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[tuple[W.World, Served]]:
    folder = tmp_path_factory.mktemp("board-version")
    async with world_site(pg_url, folder, start=START, end=END) as found:
        yield found


def _moments(board: dict[str, Any]) -> set[datetime]:
    """The instants the board's parts are judged at (one, if the page is one moment)."""
    found = {datetime.fromisoformat(board["as_of"])}
    for spec in ("week", "month", "year"):
        found.add(datetime.fromisoformat(board[spec]["period"]["as_of"]))
    return found


async def test_board_parts_share_one_snapshot_while_reports_arrive(
        site: tuple[W.World, Served]) -> None:
    world, server = site
    app, clock, state = world.app, world.clock, server.state
    async with server.client() as client:
        async with client.get("/api/v1/board") as response:
            first = await response.json()
        assert _moments(first) == {END}
        weekly = {w["label"]: w["opened"] for w in first["trend"]}
        assert weekly["2026-W49"] == first["week"]["totals"]["received"]  # trend and card agree

        # A report arrives a few minutes later: the board is refreshed in the background and
        # meanwhile served as it was -- old, but whole.
        clock.set(END + timedelta(minutes=5))
        await file(app, *world.reporter, "Một vướng mắc mới trong tuần")
        async with client.get("/api/v1/board") as response:
            during = await response.json()
        assert len(_moments(during)) == 1
        await state.figures.idle()
        async with client.get("/api/v1/board") as response:
            after = await response.json()
        assert _moments(after) == {END + timedelta(minutes=5)}
        assert after["version"] != first["version"]
        for spec in ("week", "month", "year"):  # the new report is in every part, or none
            assert after[spec]["totals"]["received"] == first[spec]["totals"]["received"] + 1
        weekly = {w["label"]: w["opened"] for w in after["trend"]}
        assert weekly["2026-W49"] == after["week"]["totals"]["received"]

        # The page links its chart by version; the chart drawn for an older page is the older
        # snapshot's, not whatever the cache holds now.
        async with client.get("/board") as response:
            page = await response.text()
        link = re.search(r'src="/board/chart\.png\?lang=vi&amp;v=([0-9a-f]+)"', page)
        assert link is not None and link.group(1) == after["version"]
        for board in (first, after):
            async with client.get(f"/board/chart.png?lang=vi&v={board['version']}") as response:
                assert response.status == 200
                drawn = await response.read()
            snapshot = state.snapshot_for(board["version"])
            assert snapshot is not None
            assert drawn == chart_png(snapshot.figures[1].digest, "vi")
        async with client.get("/board/chart.png?lang=vi&v=0123456789abcdef") as response:
            assert response.status == 404  # a version never served: no chart of another moment
