"""The pages in a real browser: Debian's chromium through Playwright (one launch per module).

* a coordinator asks the engine for a sign-in link (``/web``), opens it, sees the dashboard,
  filters it, opens a ticket with its history, and exports the spreadsheet;
* a reporter signs in the same way and cannot open another organisation's ticket by URL;
* anyone sees the public board and a status page, whose HTML holds no reporter name,
  organisation or report text;
* no page logs a Content-Security-Policy violation or any other console error.

Screenshots go to a temporary folder; with ``HOTLINE_UPDATE_SCREENSHOTS=1`` the dashboard and
board shots are written to ``docs/screenshots`` for the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from openpyxl import load_workbook

from hotline.links import status_path
from tests.browser import world as W
from tests.browser.harness import Browser, chromium_path
from tests.browser.webtest import Served, path_of, served

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="no chromium (apt-get install chromium)"),
    pytest.mark.asyncio(loop_scope="module"),
]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LINK = re.compile(r"(https?://\S+/signin/[A-Za-z0-9_-]{43})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    pytest.importorskip("playwright.sync_api")
    chromium = Browser()
    yield chromium
    chromium.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[tuple[W.World, Served]]:
    folder = tmp_path_factory.mktemp("web-browser")
    # Five weeks: enough for a red alert, stalled tickets and pending extensions on screen.
    async with W.world_app(pg_url, folder, start=W.local(2026, 11, 2, 8), end=W.local(2026, 12, 7, 9),
                           per_day=3, seed=11) as world:
        async with served(world.app) as server:
            yield world, server


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        return SHOTS
    return tmp_path_factory.mktemp("screenshots")


async def link_from_engine(world: W.World, person_id: int) -> str:
    """What ``/web`` in the chat answers: the engine's reply carries the one-time link."""
    from handlers.engine import Engine
    from hotline.messages import InboundEvent

    contact = world.contacts[person_id]
    event = InboundEvent(channel=contact.channel, update_id=f"web-{person_id}-{os.urandom(4).hex()}",
                         user_id=contact.external_id, chat_id=contact.chat_id, text="/web")
    replies = await Engine(world.app).handle(event)
    found = LINK.search(" ".join(r.text for r in replies))
    assert found, [r.text for r in replies]
    return found.group(1)


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


async def test_staff_sign_in_dashboard_filter_ticket_and_export(
        browser: Browser, site: tuple[W.World, Served], shots: Path) -> None:
    world, server = site
    link = await link_from_engine(world, world.coordinator.id)
    base = server.url

    def scenario() -> dict[str, Any]:
        context = browser.context(locale="en-GB")
        page = context.new_page()
        problems = _watch(page)
        page.goto(base + path_of(link))
        page.click("#signin-button")
        page.wait_for_url(base + "/web/")
        out: dict[str, Any] = {"title": page.title(), "h1": page.inner_text("h1")}
        page.goto(base + "/web/?lang=en")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
        out["groups_before"] = page.locator("table.groups tbody tr").count()
        out["chart_loaded"] = page.evaluate(
            "() => { const i = document.querySelector('img.chart');"
            " return i.complete && i.naturalWidth > 0; }")
        page.select_option("select[name=group]", "mps")
        page.select_option("select[name=period]", "year")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r".*group=mps.*"))
        out["filtered_url"] = page.url
        rows = page.locator("table.groups tbody tr").all()
        out["groups_after"] = [r.get_attribute("data-group") for r in rows]
        out["kpi_new"] = page.inner_text("#kpi-new")
        first = page.locator("a[href^='/web/tickets/HL-']").first
        out["ref"] = first.inner_text()
        first.click()
        page.wait_for_url(re.compile(r".*/web/tickets/HL-\d{4}-\d{6}$"))
        out["history"] = page.locator("#history li").count()
        out["ticket_h1"] = page.inner_text("h1")
        page.go_back()
        with page.expect_download() as download:
            page.click("#export-xlsx")
        out["download_name"] = download.value.suggested_filename
        out["download_path"] = download.value.path()
        with open(out["download_path"], "rb") as handle:
            sheet = load_workbook(handle, read_only=True).worksheets[0]
            out["workbook_rows"] = sum(1 for _ in sheet.iter_rows(values_only=True))
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(base + "/web/?lang=vi")
        page.screenshot(path=str(shots / "dashboard-phone.png"))
        out["overflow"] = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        out["problems"] = problems
        context.close()
        return out

    out = await browser.run(scenario)
    assert out["h1"] in ("Working-group dashboard", "Tổng hợp của Tổ công tác")
    assert out["groups_before"] >= 3 and out["chart_loaded"]
    assert "period=year" in out["filtered_url"] and out["groups_after"] == ["mps"]
    async with server.client() as client:  # the filtered page shows the API's number
        from tests.browser.webtest import sign_in

        await sign_in(client, world.app, world.coordinator)
        async with client.get("/api/v1/dashboard?period=year&group=mps") as response:
            assert out["kpi_new"] == str((await response.json())["totals"]["new"])
        async with client.get(f"/api/v1/tickets/{out['ref']}") as response:
            assert out["history"] == len((await response.json())["events"]) > 0
    assert out["ticket_h1"].startswith(out["ref"])
    assert out["download_name"].endswith(".xlsx") and out["workbook_rows"] > 1
    assert out["overflow"] <= 0, "the dashboard scrolls sideways on a phone"
    assert out["problems"] == []


async def test_a_reporter_cannot_open_another_organisations_ticket(
        browser: Browser, site: tuple[W.World, Served]) -> None:
    world, server = site
    link = await link_from_engine(world, world.reporter[0].id)
    base = server.url
    own, other = world.own_refs[0], world.other_refs[0]

    def scenario() -> dict[str, Any]:
        context = browser.context()
        page = context.new_page()
        problems = _watch(page)
        page.goto(base + path_of(link))
        page.click("#signin-button")
        page.wait_for_url(base + "/web/tickets")
        out: dict[str, Any] = {"list": page.content()}
        response = page.goto(base + f"/web/tickets/{own}")
        out["own_status"], out["own"] = response.status, page.content()
        response = page.goto(base + f"/web/tickets/{other}")
        out["other_status"], out["other"] = response.status, page.content()
        response = page.goto(base + "/web/?period=year")
        out["dashboard_url"] = page.url
        response = page.goto(base + "/web/export.xlsx")
        out["export_status"] = response.status
        out["problems"] = [p for p in problems if "403" not in p and "404" not in p]
        context.close()
        return out

    out = await browser.run(scenario)
    assert own in out["list"] and other not in out["list"]
    assert out["own_status"] == 200 and W.REPORTER_ORG not in out["other"]
    assert out["other_status"] == 404
    other_text = next(t for t, r in zip(world.texts, world.refs, strict=True) if r == other)
    assert not any(s in out["other"] for s in (other_text, W.OTHER_ORG, W.OTHER_NAME))
    assert out["dashboard_url"].endswith("/web/tickets")  # reporters have no dashboard
    assert out["export_status"] == 403
    assert out["problems"] == []


async def test_public_board_and_status_page_hold_no_personal_data(
        browser: Browser, site: tuple[W.World, Served], shots: Path) -> None:
    world, server = site
    async with world.app.uow() as uow:
        ticket = await uow.tickets.by_ref(world.own_refs[0])
        assert ticket is not None
        status = status_path(ticket.ref, ticket.check_code)
    base = server.url

    def scenario() -> dict[str, Any]:
        context = browser.context(locale="en-GB")
        page = context.new_page()
        problems = _watch(page)
        out: dict[str, Any] = {}
        page.goto(base + "/board?lang=en")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / "board.png"), full_page=True)
        out["board"] = page.content()
        out["board_en"] = page.inner_text("h1")
        page.goto(base + "/board?lang=vi")
        out["board_vi"] = page.content()
        response = page.goto(base + status)
        out["status_code"], out["status"] = response.status, page.content()
        out["status_text"] = page.inner_text("main")
        out["problems"] = problems
        context.close()
        return out

    out = await browser.run(scenario)
    secrets = [W.REPORTER_NAME, W.REPORTER_ORG, W.OTHER_NAME, W.OTHER_ORG, *world.texts,
               world.coordinator.display_name, world.leader.display_name,
               *(m.display_name for ms in world.members.values() for m in ms)]
    for name in ("board", "board_vi", "status"):
        leaked = [s for s in secrets if s in out[name]]
        assert not leaked, (name, leaked[:3])
    assert out["board_en"].startswith("Three publicities")
    assert out["status_code"] == 200 and world.own_refs[0] in out["status_text"]
    assert out["problems"] == []
