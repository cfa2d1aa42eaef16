"""More hostile input, each answered with a clear status and no change: malformed percent
escapes and bytes in paths and parameters, oversized codes and tokens, odd forms, and proxy
headers from an address that is not a trusted proxy (no ``Secure`` cookie forced, no
rate-limit bucket of someone else's choosing).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from hotline.links import status_path
from hotline.web.app import build_web_app
from hotline.web.middleware import CSP
from hotline.web.state import STATE, parse_proxies
from storage.models import Ticket
from tests.browser import world as W
from tests.browser.webtest import Served, csrf_of, one_ticket_site, path_of, sign_in, signin_link
from tests.integration.test_web_public import _event_count

pytestmark = pytest.mark.asyncio(loop_scope="module")
Site = tuple[W.World, Served, Ticket]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    folder = tmp_path_factory.mktemp("web-bad-input")
    async with one_ticket_site(pg_url, folder, W.TEXTS[2].format(n=1)) as found:
        yield found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def staff(site: Site) -> AsyncIterator[aiohttp.ClientSession]:
    world, server, _ = site
    async with server.client() as client:
        await sign_in(client, world.app, world.coordinator)
        yield client


@pytest.mark.parametrize(("path", "status"), [
    ("/status/HL-2026-000001/" + "a" * 5000, 404), ("/status/%zz/abc", 404),
    ("/status/HL-2026-000001/%ff%fe", 404), ("/status/HL-2026-000001/ab%00cd", 404),
    ("/web/tickets/%00", 404), ("/web/tickets/" + "9" * 3000, 404),
    # well formed, but no ticket can have them: "not found", like a missing ticket
    ("/web/tickets/HL-2026-000000", 404), ("/api/v1/tickets/HL-2026-000000", 404),
    ("/api/v1/tickets/hl-0000-0", 404), ("/web/tickets/HL-9999-000000", 404),
    ("/signin/" + "x" * 3000, 403), ("/signin/%ff%00", 403),
    ("/web/?period=%ff", 400), ("/web/?group=%zz", 400), ("/board?lang=%ff", 400),
    ("/web/tickets?page=99999999999", 400), ("/web/tickets?page=-1", 400),
    ("/api/v1/tickets?offset=-1", 400), ("/api/v1/tickets?limit=1e3", 400),
    ("/web/export.csv?sheet=passwords", 400), ("/web/?" + "&".join(f"x{i}=1" for i in range(200)), 200),
    ("/web/?" + "&".join(f"x{i}=1" for i in range(600)), 400),
])
async def test_malformed_paths_and_parameters(site: Site, staff: aiohttp.ClientSession, path: str,
                                              status: int) -> None:
    world, _, _ = site
    before = await _event_count(world.app)
    async with staff.get(path) as response:
        assert response.status == status, path[:80]
        assert response.headers["Content-Security-Policy"] == CSP
        body = await response.text()
        if path.startswith("/api/"):
            assert '"error"' in body
        else:
            assert "<html" in body and "Traceback" not in body
    assert before == await _event_count(world.app)


@pytest.mark.parametrize(("data", "content_type", "status"), [
    (b'{"token": "x"}', "application/json", 415),
    (b"token=" + b"x" * 5000 + b"&csrf=y", "application/x-www-form-urlencoded", 413),
    (b"token=%ff%fe&csrf=%zz", "application/x-www-form-urlencoded", 403),
    (b"", "application/x-www-form-urlencoded", 403),
])
async def test_odd_sign_in_forms_change_nothing(site: Site, data: bytes, content_type: str,
                                                status: int) -> None:
    world, server, _ = site
    before = await _event_count(world.app)
    async with server.client() as client:
        async with client.post("/signin", data=data, headers={"Content-Type": content_type},
                               allow_redirects=False) as response:
            assert response.status == status
            assert "hl_session" not in response.cookies
    assert before == await _event_count(world.app)


async def test_proxy_headers_from_an_untrusted_address_are_ignored(site: Site) -> None:
    """Only a configured proxy may say the request came over HTTPS or from another client."""
    world, server, ticket = site
    state = server.state
    trusted = state.trusted_proxies
    state.trusted_proxies = parse_proxies("192.0.2.1")  # loopback is no longer a proxy
    try:
        spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"}
        async with server.client() as client:
            link = await signin_link(world.app, world.coordinator)
            async with client.get(path_of(link), headers=spoof) as response:
                assert response.status == 200
                assert "Secure" not in response.headers.get("Set-Cookie", "")
                assert "Strict-Transport-Security" not in response.headers
            limit = state.status_limiter.burst
            state.status_limiter._buckets.clear()
            statuses = []
            for n in range(int(limit) + 1):  # a new X-Forwarded-For each time: same bucket
                headers = {"X-Forwarded-For": f"198.51.100.{n}"}
                async with client.get(status_path(ticket.ref, "wrong"), headers=headers) as response:
                    statuses.append(response.status)
            assert statuses[-1] == 429 and set(statuses[:-1]) == {404}
    finally:
        state.trusted_proxies = trusted
        state.status_limiter._buckets.clear()


@pytest.fixture
def tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a throw-away self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_cookies_are_secure_when_served_over_tls(site: Site, tls: ssl.SSLContext) -> None:
    """Served over HTTPS directly (no proxy, no https base URL): the cookies say ``Secure``."""
    world, _, _ = site
    context = tls
    web_app = build_web_app(world.app, warm=False, processes=False)
    web_app[STATE].trusted_proxies = []  # nobody may claim HTTPS for us: only the socket counts
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    base = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        link = await signin_link(world.app, world.coordinator)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base, cookie_jar=jar,
                                         connector=aiohttp.TCPConnector(ssl=False)) as client:
            async with client.get(path_of(link)) as response:
                assert response.status == 200
                assert "Secure" in response.headers["Set-Cookie"]
                assert response.headers["Strict-Transport-Security"].startswith("max-age=")
                page = await response.text()
            token = path_of(link).rsplit("/", 1)[1]
            async with client.post("/signin", data={"token": token, "csrf": csrf_of(page)},
                                   allow_redirects=False) as response:
                assert response.status == 303
                session = next(v for k, v in response.headers.items()
                               if k == "Set-Cookie" and v.startswith("hl_session="))
                assert "Secure" in session and "HttpOnly" in session
    finally:
        await runner.cleanup()
