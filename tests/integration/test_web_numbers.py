"""The dashboard, the public board and the export agree with the digest on a generated history.

One history per module (seven weeks of reports worked through the real services, sweeps
included), served on loopback; every test reads it through HTTP and compares with
``hotline.digests.build_digest`` for the very same period, and the export with the files the
CLI's ``hotline export`` writes. API responses are also checked against ``docs/openapi.json``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from openpyxl import load_workbook

from hotline.digests import build_digest
from hotline.digests import period as P
from hotline.digests.export import load_export, ticket_rows, write_csv
from hotline.digests.model import Digest
from hotline.web.params import resolve_period
from tests.browser import world as W
from tests.browser.apicheck import Checker, load
from tests.browser.webtest import Served, served, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")

START, END = W.local(2026, 10, 19, 8), W.local(2026, 12, 7, 9)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[W.World, Served]]:
    folder = tmp_path_factory.mktemp("web-numbers")
    async with W.world_app(pg_url, folder, start=START, end=END) as world:
        async with served(world.app) as server:
            yield world, server


@pytest_asyncio.fixture(loop_scope="module")
async def coordinator(site: tuple[W.World, Served]) -> AsyncIterator[aiohttp.ClientSession]:
    world, server = site
    async with server.client() as client:
        await sign_in(client, world.app, world.coordinator)
        yield client


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker(load())


async def _json(client: aiohttp.ClientSession, path: str, checker: Checker | None = None,
                spec: str | None = None) -> Any:
    async with client.get(path) as response:
        body = await response.json()
        assert response.status == 200, body
    if checker is not None and spec is not None:
        checker.check(spec, 200, body)
    return body


def _counts(g: Any) -> dict[str, int]:
    return {
        "new": g.flow.new, "resolved": g.flow.resolved, "closed": g.flow.closed,
        "rejected": g.flow.rejected, "reopened": g.flow.reopened, "open": g.stock.open,
        "overdue": g.stock.overdue, "green": g.stock.green, "amber": g.stock.amber, "red": g.stock.red,
        "waiting_reporter": g.stock.waiting_reporter, "ext_requested": g.extensions.requested,
        "ext_approved": g.extensions.approved, "ext_refused": g.extensions.refused,
    }


def _assert_dashboard_is_digest(body: dict[str, Any], digest: Digest) -> None:
    assert body["period"]["start"] == digest.period.start.isoformat()
    assert body["period"]["end"] == digest.period.end.isoformat()
    totals = dict(body["totals"])
    assert totals.pop("escalations") == digest.escalations
    assert totals == _counts(digest)
    fr = digest.first_response
    assert body["first_response"] == {"met": fr.met, "missed": fr.missed, "pending": fr.pending,
                                      "percent": fr.percent}
    rt = digest.resolve_time
    assert body["resolve_time"] == {"count": rt.count, "median_days": rt.median_days, "p90_days": rt.p90_days}
    assert body["satisfaction"] == {"count": digest.satisfaction.count, "mean": digest.satisfaction.mean}
    by_code = {g["code"]: g for g in body["groups"]}
    assert set(by_code) == {g.code for g in digest.groups}
    for g in digest.groups:
        row = dict(by_code[g.code])
        assert row.pop("red_alert") == g.red_alert
        assert {k: row[k] for k in _counts(g)} == _counts(g), g.code
    assert [a["code"] for a in body["red_alerts"]] == [a.code for a in digest.red_alerts if a.open_at_end]
    assert [(w["label"], w["opened"], w["resolved"]) for w in body["trend"]] == [
        (w.label, w.opened, w.resolved) for w in digest.trend]
    assert [x["ref"] for x in body["stalled"]] == [x.ref for x in digest.stalled]


async def test_history_is_rich_enough(site: tuple[W.World, Served]) -> None:
    """Guards the other tests: the generated history has what they compare."""
    world, _ = site
    digest = await build_digest(world.app, P.parse_month("2026-11"))
    assert digest.flow.new > 10 and digest.flow.resolved > 3 and digest.stock.overdue > 3
    assert digest.satisfaction.count > 0 and digest.extensions.requested > 0
    assert any(a.open_at_end for a in digest.red_alerts)


@pytest.mark.parametrize("spec", ["2026-11", "2026-W47", "2026-11-10..2026-11-24"])
async def test_dashboard_equals_the_digest_for_finished_periods(
        site: tuple[W.World, Served], coordinator: aiohttp.ClientSession, checker: Checker,
        spec: str) -> None:
    world, _ = site
    body = await _json(coordinator, f"/api/v1/dashboard?period={spec}", checker, "/dashboard")
    period = resolve_period(spec, world.app.clock.now(), world.app.settings.timezone)
    _assert_dashboard_is_digest(body, await build_digest(world.app, period))


async def test_dashboard_equals_the_digest_to_date(
        site: tuple[W.World, Served], coordinator: aiohttp.ClientSession) -> None:
    world, _ = site
    for spec in ("month", "week", "year"):
        body = await _json(coordinator, f"/api/v1/dashboard?period={spec}")
        period = resolve_period(spec, world.app.clock.now(), world.app.settings.timezone)
        assert period.end - world.app.clock.now() == timedelta(microseconds=1)
        _assert_dashboard_is_digest(body, await build_digest(world.app, period))


async def test_filtered_dashboard_equals_the_digests_group_row(
        site: tuple[W.World, Served], coordinator: aiohttp.ClientSession) -> None:
    world, _ = site
    digest = await build_digest(world.app, P.parse_month("2026-11"))
    active = [g for g in digest.groups if g.flow.new or g.stock.open]
    assert len(active) >= 2
    for g in active:
        body = await _json(coordinator, f"/api/v1/dashboard?period=2026-11&group={g.code}")
        totals = dict(body["totals"])
        totals.pop("escalations")
        assert totals == _counts(g), g.code
        assert [x["code"] for x in body["groups"]] == [g.code]
    kinds = {k.key: k for k in digest.by_reporter_kind}
    for kind in ("enterprise", "locality"):
        body = await _json(coordinator, f"/api/v1/dashboard?period=2026-11&kind={kind}")
        assert body["totals"]["new"] == kinds[kind].flow.new
        assert body["totals"]["open"] == kinds[kind].stock.open
        assert body["satisfaction"]["count"] == kinds[kind].satisfaction.count


async def test_dashboard_page_prints_the_digests_numbers(
        site: tuple[W.World, Served], coordinator: aiohttp.ClientSession) -> None:
    world, _ = site
    digest = await build_digest(world.app, P.parse_month("2026-11"))
    async with coordinator.get("/web/?period=2026-11&lang=en") as response:
        assert response.status == 200
        page = await response.text()
    for name, value in (("new", digest.flow.new), ("resolved", digest.flow.resolved),
                        ("open", digest.stock.open), ("overdue", digest.stock.overdue)):
        assert re.search(rf'id="kpi-{name}">{value}<', page), name
    red = [a.code for a in digest.red_alerts if a.open_at_end]
    first_row = re.search(r'<tr class="([^"]*)" data-group="([^"]+)"', page)
    assert first_row is not None and first_row.group(2) == red[0] and "red-alert" in first_row.group(1)


async def test_board_equals_the_digest(site: tuple[W.World, Served], checker: Checker) -> None:
    world, server = site
    async with server.client() as anonymous:
        board = await _json(anonymous, "/api/v1/board", checker, "/board")
    tz = world.app.settings.timezone
    for key in ("month", "year"):
        digest = await build_digest(world.app, resolve_period(key, world.app.clock.now(), tz))
        block = board[key]
        assert block["period"]["end"] == digest.period.end.isoformat()
        by_code = {g["code"]: g for g in block["groups"]}
        for g in digest.groups:
            row = by_code[g.code]
            assert (row["received"], row["resolved"], row["overdue"], row["extensions_granted"],
                    row["red_alert"]) == (g.flow.new, g.flow.resolved, g.stock.overdue,
                                          g.extensions.approved, g.red_alert), (key, g.code)
            assert row["resolved_on_time"] <= row["resolved"]
        totals = block["totals"]
        assert (totals["received"], totals["resolved"], totals["overdue"], totals["extensions_granted"]) == (
            digest.flow.new, digest.flow.resolved, digest.stock.overdue, digest.extensions.approved)
        satisfaction = digest.satisfaction
        assert totals["satisfaction"] == {"count": satisfaction.count, "mean": satisfaction.mean}
        assert sum(g["satisfaction"]["count"] for g in block["groups"]) == digest.satisfaction.count
        assert totals["red_alerts"] == sum(1 for g in digest.groups if g.red_alert)
    weeks = board["trend"]
    assert weeks[-1]["label"] == P.week_of(world.app.clock.now(), tz).label
    assert sum(w["opened"] for w in weeks) == len(world.refs)


async def test_public_pages_carry_no_personal_data(site: tuple[W.World, Served]) -> None:
    world, server = site
    secrets = [W.REPORTER_NAME, W.REPORTER_ORG, W.OTHER_NAME, W.OTHER_ORG, *world.texts]
    secrets += [p.display_name for p in (world.coordinator, world.leader, world.lead)]
    async with server.client() as anonymous:
        for path in ("/board", "/board?lang=en", "/api/v1/board"):
            async with anonymous.get(path) as response:
                assert response.status == 200
                text = await response.text()
            leaked = [s for s in secrets if s in text or s[:30] in text]
            assert not leaked, (path, leaked[:3])
            assert not re.search(r"HL-\d{4}-\d{6}", text), path


async def test_ticket_list_is_the_export(site: tuple[W.World, Served], coordinator: aiohttp.ClientSession,
                                         checker: Checker) -> None:
    world, _ = site
    listing = await _json(coordinator, "/api/v1/tickets?period=2026-11&limit=500", checker, "/tickets")
    data = await load_export(world.app, P.parse_month("2026-11"))
    rows = ticket_rows(data, world.app, "vi")
    assert sorted(x["ref"] for x in listing["items"]) == [r[0] for r in rows]
    assert listing["total"] == len(rows)
    page2 = await _json(coordinator, "/api/v1/tickets?period=2026-11&limit=5&offset=5")
    assert [x["ref"] for x in page2["items"]] == [x["ref"] for x in listing["items"][5:10]]


async def test_export_files_equal_the_cli_export(site: tuple[W.World, Served],
                                                 coordinator: aiohttp.ClientSession, tmp_path: Path) -> None:
    world, _ = site
    spec = "2026-11-01..2026-11-30"
    period = P.date_range(P.parse_date("2026-11-01"), P.parse_date("2026-11-30"), world.app.settings.timezone)
    cli = write_csv(tmp_path, "cli", await load_export(world.app, period), world.app, "vi")
    for sheet, expected in (("tickets", cli[0]), ("events", cli[1])):
        async with coordinator.get(f"/web/export.csv?period={spec}&sheet={sheet}") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in response.headers["Content-Disposition"]
            body = await response.read()
        assert body == expected.read_bytes(), sheet
    async with coordinator.get(f"/web/export.xlsx?period={spec}&lang=en") as response:
        assert response.status == 200
        workbook = load_workbook(io.BytesIO(await response.read()), read_only=True)
    sheet = workbook.worksheets[0]
    refs = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    expected_refs = [r[0] for r in csv.reader(io.StringIO(cli[0].read_text("utf-8-sig")))][1:]
    assert refs == expected_refs


async def test_member_sees_and_exports_only_their_group(site: tuple[W.World, Served]) -> None:
    world, server = site
    member = world.members["mof"][0]
    async with server.client() as client:
        await sign_in(client, world.app, member)
        listing = await _json(client, "/api/v1/tickets?period=2026-11&limit=500")
        assert listing["items"] and {x["group"] for x in listing["items"]} == {"mof"}
        async with client.get("/web/export.csv?period=2026-11") as response:
            rows = list(csv.reader(io.StringIO((await response.read()).decode("utf-8-sig"))))[1:]
        assert sorted(r[0] for r in rows) == sorted(x["ref"] for x in listing["items"])
        dashboard = await _json(client, "/api/v1/dashboard?period=2026-11")
        assert {x["group"] for x in dashboard["stalled"]} <= {"mof"}
        async with world.app.uow() as uow:
            mof = await uow.people.group("mof")
            others = [t.ref for t in await uow.tickets.list(limit=None) if t.group_id != mof.id]
        for ref in others[:3]:
            async with client.get(f"/api/v1/tickets/{ref}") as response:
                assert response.status == 404, ref
            async with client.get(f"/web/tickets/{ref}") as response:
                assert response.status == 404, ref


async def test_every_api_response_matches_openapi(
        site: tuple[W.World, Served], coordinator: aiohttp.ClientSession, checker: Checker) -> None:
    world, server = site
    checker.check("/me", 200, await _json(coordinator, "/api/v1/me"))
    checker.check("/extensions/pending", 200, await _json(coordinator, "/api/v1/extensions/pending"))
    for ref in world.refs[:6]:
        checker.check("/tickets/{ref}", 200, await _json(coordinator, f"/api/v1/tickets/{ref}"))
    for spec in ("week", "year", "2026-W45"):
        checker.check("/dashboard", 200, await _json(coordinator, f"/api/v1/dashboard?period={spec}&rag=red"))
    async with server.client() as reporter:
        await sign_in(reporter, world.app, world.reporter[0])
        checker.check("/me", 200, await _json(reporter, "/api/v1/me"))
        checker.check("/tickets", 200, await _json(reporter, "/api/v1/tickets?limit=5"))
        detail = await _json(reporter, f"/api/v1/tickets/{world.own_refs[0]}")
        checker.check("/tickets/{ref}", 200, detail)
        assert "organisation" not in detail and "assignee" not in detail
        assert all("actor" not in e for e in detail["events"])
        for path, status, spec in (("/api/v1/dashboard", 403, "/dashboard"),
                                   (f"/api/v1/tickets/{world.other_refs[0]}", 404, "/tickets/{ref}")):
            async with reporter.get(path) as response:
                assert response.status == status
                checker.check(spec, status, await response.json())
    async with server.client() as anonymous:
        for path, status, spec in (("/api/v1/me", 401, "/me"),
                                   ("/api/v1/dashboard?period=x", 401, "/dashboard")):
            async with anonymous.get(path) as response:
                assert response.status == status
                checker.check(spec, status, await response.json())
    async with coordinator.get("/api/v1/tickets?kind=robot") as response:
        assert response.status == 400
        checker.check("/tickets", 400, await response.json())
