"""Public pages (board, status lookup), security headers, escaping, bad input and the cache.

Everything here is reachable without signing in, or is about how any request is answered:
wrong check codes, unknown routes, huge or malformed parameters all get a clear page or JSON
error with the right status, and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from hotline.deps import App
from hotline.links import status_path, status_url
from hotline.web.middleware import CSP
from storage.models import KeyValue, Ticket, TicketEvent
from tests.browser import world as W
from tests.browser.webtest import Served, one_ticket_site, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="module")
SCRIPT = "<script>alert('xss')</script> & <b>bold</b>"
Site = tuple[W.World, Served, Ticket]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    """One small world for the whole module: these tests only read (and sign in)."""
    folder = tmp_path_factory.mktemp("web-public")
    async with one_ticket_site(pg_url, folder, f"{SCRIPT} {W.TEXTS[3].format(n=9)}") as found:
        yield found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def staff(site: Site) -> AsyncIterator[aiohttp.ClientSession]:
    world, server, _ = site
    async with server.client() as client:
        await sign_in(client, world.app, world.coordinator)
        yield client


async def _event_count(app: App) -> tuple[int, int]:
    async with app.uow() as uow:
        events = (await uow.session.execute(select(func.count()).select_from(TicketEvent))).scalar_one()
        keys = (await uow.session.execute(select(func.count()).select_from(KeyValue))).scalar_one()
    return int(events), int(keys)


async def test_status_page_shows_the_state_and_nothing_personal(site: Site) -> None:
    world, server, ticket = site
    url = status_url(world.app.settings, ticket.ref, ticket.check_code)
    assert url == f"http://127.0.0.1:8080/status/{ticket.ref}/{ticket.check_code}"
    async with server.client() as client:
        async with client.get(status_path(ticket.ref, ticket.check_code) + "?lang=en") as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            page = await response.text()
    assert ticket.ref in page and "Ministry of Public Security" in page and "Assigned" in page
    for secret in (W.REPORTER_NAME, W.REPORTER_ORG, W.TEXTS[3].format(n=9)[:25], "alert(", "Cán bộ mps"):
        assert secret not in page, secret
    assert "<script" not in page


async def test_wrong_check_codes_look_exactly_like_missing_tickets(site: Site) -> None:
    _, server, ticket = site
    wrong = ("x" if ticket.check_code[0] != "x" else "y") + ticket.check_code[1:]
    missing_ref = "HL-2026-999999"
    async with server.client() as client:
        bodies = []
        for ref, code in ((ticket.ref, wrong), (missing_ref, ticket.check_code), (ticket.ref, "")):
            async with client.get(f"/status/{ref}/{code}" if code else f"/status/{ref}/") as response:
                assert response.status == 404
                bodies.append((await response.text()).replace(ref, "REF"))
        assert bodies[0] == bodies[1]
        long_code = "/status/HL-2026-000001/" + "a" * 500
        for path in ("/status/HL-2026-000001", "/status/hl-2026-1/abc", long_code):
            async with client.get(path) as response:
                assert response.status == 404, path


async def test_status_lookups_are_rate_limited_per_client(site: Site) -> None:
    world, server, ticket = site
    limit = world.app.settings.web_status_per_minute
    me = {"X-Forwarded-For": "192.0.2.44"}
    async with server.client() as client:
        statuses = []
        for i in range(limit + 1):
            async with client.get(f"/status/{ticket.ref}/guess{i:05d}", headers=me) as response:
                statuses.append(response.status)
                last = response
        assert statuses[:limit] == [404] * limit and statuses[-1] == 429
        assert int(last.headers["Retry-After"]) >= 1
        async with client.get(status_path(ticket.ref, ticket.check_code), headers=me) as response:
            assert response.status == 429  # even the right code, from this client
        # Another client behind the (trusted, loopback) proxy has its own allowance.
        headers = {"X-Forwarded-For": "198.51.100.7"}
        async with client.get(status_path(ticket.ref, ticket.check_code), headers=headers) as response:
            assert response.status == 200


async def test_security_headers_everywhere(site: Site, staff: aiohttp.ClientSession) -> None:
    _, _, ticket = site
    client = staff
    for path in ("/board", "/api/v1/board", "/web/", f"/web/tickets/{ticket.ref}", "/static/web.css",
                 "/nope", "/api/v1/nope", "/board/chart.png"):
        async with client.get(path) as response:
            h = response.headers
            assert h["Content-Security-Policy"] == CSP, path
            assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
            assert "script-src" not in h["Content-Security-Policy"]  # default-src 'none': no scripts
            assert h["X-Content-Type-Options"] == "nosniff"
            assert h["Referrer-Policy"] == "no-referrer"
            if response.content_type == "text/html":
                body = await response.text()
                assert "<script" not in body.lower() and " style=" not in body
                assert not re.search(r"\son[a-z]+=", body), path


async def test_user_text_is_escaped(site: Site, staff: aiohttp.ClientSession) -> None:
    _, _, ticket = site
    async with staff.get(f"/web/tickets/{ticket.ref}") as response:
        page = await response.text()
    async with staff.get("/web/tickets") as response:
        listing = await response.text()
    for text in (page, listing):
        assert "<script>alert" not in text and "<b>bold</b>" not in text
        assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in text


@pytest.mark.parametrize("query", [
    "period=2026-13", "period=2026-W60", "period=1999", "period=2026-12-01..2025-01-01",
    "period=2025-01-01..2026-06-01", "period=2099", "period=yesterday", "group=nope", "group=mps&group=moj",
    "state=lost", "rag=purple", "kind=alien", "category=" + "c" * 80, "lang=fr", "period=2026%00",
    "q=" + "x" * 5000,
])
async def test_bad_parameters_get_a_clear_400(site: Site, staff: aiohttp.ClientSession, query: str) -> None:
    world, _, _ = site
    before = await _event_count(world.app)
    client = staff
    async with client.get(f"/web/?{query}") as response:
        assert response.status == 400
        page = await response.text()
        assert "<html" in page and "Traceback" not in page
    async with client.get(f"/api/v1/dashboard?{query}") as response:
        assert response.status == 400
        body = await response.json()
        assert body["error"]["status"] == 400 and body["error"]["message"]
    if not query.startswith(("group=", "state=", "rag=", "kind=", "category=")):
        async with client.get(f"/api/v1/board?{query}") as response:
            assert response.status in (200, 400)
    assert before == await _event_count(world.app)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/nope", 404), ("GET", "/api/v1/nope", 404), ("GET", "/web/tickets/HL-abc", 404),
    ("GET", "/web/tickets/HL-2026-999999", 404), ("POST", "/board", 405), ("GET", "/static/nope.css", 404),
    ("GET", "/static/../hotline/config.py", 404), ("GET", "/web/tickets?page=abc", 400),
    ("GET", "/web/tickets?page=0", 400), ("GET", "/api/v1/tickets?limit=100000", 400),
    ("GET", "/web/export.pdf", 404), ("DELETE", "/api/v1/board", 405),
])
async def test_unknown_routes_and_methods(staff: aiohttp.ClientSession, method: str, path: str,
                                          status: int) -> None:
    client = staff
    async with client.request(method, path) as response:
        assert response.status == status
        if path.startswith("/api/"):
            assert (await response.json())["error"]["status"] == status
        else:
            assert "<html" in await response.text()


async def test_signed_out_pages_say_how_to_sign_in(site: Site) -> None:
    _, server, ticket = site
    async with server.client() as client:
        for path in ("/web/", "/web/tickets", f"/web/tickets/{ticket.ref}", "/web/export.xlsx",
                     "/api/v1/me", "/api/v1/tickets"):
            async with client.get(path) as response:
                assert response.status == 401, path
                assert "/web" in await response.text()
        async with client.get("/healthz") as response:
            assert (await response.json()) == {"ok": True}


async def test_language_choice(site: Site) -> None:
    _, server, _ = site
    async with server.client() as client:
        async with client.get("/board") as response:
            assert "Bảng công khai" in await response.text()
        async with client.get("/board?lang=en") as response:
            assert "Public board" in await response.text()
        async with client.get("/board") as response:  # remembered in a cookie
            assert "Public board" in await response.text()
    async with server.client() as client:
        async with client.get("/board", headers={"Accept-Language": "en-GB,en;q=0.9"}) as response:
            assert 'lang="en"' in await response.text()
