"""Password-less sign-in, sessions, CSRF and role checks, over real HTTP on loopback.

Bad credentials of every kind (forged, expired, reused links; tampered cookies; missing CSRF
tokens) get a clear page or JSON error with the right status, and change nothing: no session
is opened, a link refused for CSRF reasons still works afterwards.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from hotline.deps import App
from hotline.domain.enums import Role
from hotline.services import signin
from hotline.services.tokens import token_key
from hotline.web import sessions
from storage.models import KeyValue, Person
from tests.browser import world as W
from tests.browser.webtest import Served, csrf_of, path_of, served, sign_in, signin_link
from tests.factories import file, make_staff

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(pg_url: str | None, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[tuple[W.World, Served]]:
    """One world for the module; tests compare counts before and after, never absolute ones."""
    folder = tmp_path_factory.mktemp("web-auth")
    async with W.world_app(pg_url, folder, start=W.local(2026, 12, 7, 9), end=W.local(2026, 12, 7, 9),
                           history=False, members=1) as world:
        app = world.app
        for who, text, category in ((world.reporter, W.TEXTS[0], "data"), (world.other, W.TEXTS[2], "legal"),
                                    (world.reporter, W.TEXTS[1], "funding")):
            ticket = await file(app, who[0], who[1], text.format(n=1), category=category)
            (world.own_refs if who is world.reporter else world.other_refs).append(ticket.ref)
        async with served(app) as server:
            yield world, server


async def _count(app: App, prefix: str) -> int:
    """Rows under a key prefix (sessions, sign-in links)."""
    async with app.uow() as uow:
        stmt = select(func.count()).select_from(KeyValue).where(KeyValue.key.startswith(prefix))
        return int((await uow.session.execute(stmt)).scalar_one())


def _cookie(response: aiohttp.ClientResponse, name: str) -> str:
    for header in response.headers.getall("Set-Cookie", []):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no {name} cookie set")


async def test_a_link_signs_in_exactly_once(site: tuple[W.World, Served]) -> None:
    world, server = site
    app = world.app
    opened = await _count(app, sessions.PREFIX)
    link = await signin_link(app, world.coordinator)
    assert link.startswith("http://127.0.0.1:8080/signin/")
    async with server.client() as client:
        for _ in range(2):  # a link preview fetching the page does not use it up
            async with client.get(path_of(link)) as response:
                assert response.status == 200
                assert response.headers["Cache-Control"] == "no-store"
                page = await response.text()
        token = html.unescape(re.search(r'name="token" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        async with client.post("/signin", data={"token": token, "csrf": csrf_of(page)},
                               allow_redirects=False) as response:
            assert response.status == 303
            cookie = _cookie(response, sessions.COOKIE)
            assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
            assert "Secure" not in cookie  # plain HTTP on loopback
        async with client.get("/api/v1/me") as response:
            me = await response.json()
            assert response.status == 200 and me["role"] == "coordinator" and me["dashboard"]
        async with client.get("/web/") as response:
            assert response.status == 200
    assert await _count(app, sessions.PREFIX) == opened + 1
    assert await _count(app, signin.PREFIX) == 0
    async with server.client() as second:  # the same link again: refused, nothing opened
        async with second.get(path_of(link)) as response:
            assert response.status == 403
            assert "/web" in await response.text()
        second.cookie_jar.update_cookies({sessions.CSRF_COOKIE: "x" * 32})
        async with second.post("/signin", data={"token": token, "csrf": "x" * 32},
                               allow_redirects=False) as response:
            assert response.status == 403
            assert sessions.COOKIE not in response.cookies
        async with second.get("/api/v1/me") as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "unauthorized"
    assert await _count(app, sessions.PREFIX) == opened + 1


async def test_expired_forged_and_malformed_links_are_refused(site: tuple[W.World, Served]) -> None:
    world, server = site
    app = world.app
    opened = await _count(app, sessions.PREFIX)
    link = await signin_link(app, world.leader)
    app.clock.advance(timedelta(minutes=app.settings.web_signin_ttl_minutes, seconds=1))  # type: ignore[attr-defined]
    forged = "A" * 43
    async with server.client() as client:
        expired = path_of(link).rsplit("/", 1)[1]
        for token in (expired, forged, "short", "x" * 3000, "%00%01", "..%2F..%2Fetc"):
            async with client.get(f"/signin/{token}") as response:
                assert response.status in (403, 404), token[:20]
                text = await response.text()
                assert "<html" in text and "Traceback" not in text
            client.cookie_jar.update_cookies({sessions.CSRF_COOKIE: "c" * 32})
            async with client.post("/signin", data={"token": token, "csrf": "c" * 32},
                                   allow_redirects=False) as response:
                assert response.status == 403
    assert await _count(app, sessions.PREFIX) == opened
    assert await _count(app, signin.PREFIX) == 0  # the expired one was used up by the attempt


async def test_a_sign_in_post_without_the_csrf_token_changes_nothing(site: tuple[W.World, Served]) -> None:
    world, server = site
    link = await signin_link(world.app, world.coordinator)
    token = path_of(link).rsplit("/", 1)[1]
    async with server.client() as client:
        async with client.get(path_of(link)) as response:
            page = await response.text()
        for data in ({"token": token}, {"token": token, "csrf": "wrong"}):
            async with client.post("/signin", data=data, allow_redirects=False) as response:
                assert response.status == 403
        async with client.post("/signin", json={"token": token}, allow_redirects=False) as response:
            assert response.status == 415
        async with world.app.uow() as uow:
            assert await signin.peek_signin_token(uow, world.app, token)
        async with client.post("/signin", data={"token": token, "csrf": csrf_of(page)},
                               allow_redirects=False) as response:
            assert response.status == 303


async def test_tampered_cookies_are_signed_out(site: tuple[W.World, Served]) -> None:
    world, server = site
    async with server.client() as client:
        await sign_in(client, world.app, world.coordinator)
        value = next(c.value for c in client.cookie_jar if c.key == sessions.COOKIE)
        sid, _, mac = value.partition(".")
        flipped = f"{sid}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"
        for forged in (flipped, f"{'B' * 43}.{mac}", sid, "garbage"):
            async with server.client() as other:
                other.cookie_jar.update_cookies({sessions.COOKIE: forged})
                async with other.get("/web/") as response:
                    assert response.status == 401
                    assert "/web" in await response.text()
                async with other.get("/api/v1/dashboard") as response:
                    assert response.status == 401


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(site: tuple[W.World, Served]) -> None:
    world, server = site
    async with server.client() as client:
        await sign_in(client, world.app, world.coordinator)
        opened = await _count(world.app, sessions.PREFIX)
        value = next(c.value for c in client.cookie_jar if c.key == sessions.COOKIE)
        async with client.post("/signout", data={"csrf": "nope"}, allow_redirects=False) as response:
            assert response.status == 403
        async with client.get("/web/") as response:
            assert response.status == 200
            page = await response.text()
        async with client.post("/signout", data={"csrf": csrf_of(page)}, allow_redirects=False) as response:
            assert response.status == 303
    assert await _count(world.app, sessions.PREFIX) == opened - 1
    async with server.client() as replay:
        replay.cookie_jar.update_cookies({sessions.COOKIE: value})
        async with replay.get("/api/v1/me") as response:
            assert response.status == 401


async def test_a_reporter_sees_only_their_organisations_tickets(site: tuple[W.World, Served]) -> None:
    world, server = site
    async with server.client() as client:
        await sign_in(client, world.app, world.reporter[0])
        async with client.get("/web/", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/web/tickets"
        async with client.get("/web/tickets") as response:
            page = await response.text()
        assert all(ref in page for ref in world.own_refs)
        assert not any(ref in page for ref in world.other_refs)
        assert W.OTHER_ORG not in page and W.OTHER_NAME not in page
        async with client.get("/api/v1/tickets") as response:
            listing = await response.json()
        assert sorted(x["ref"] for x in listing["items"]) == sorted(world.own_refs)
        async with client.get(f"/web/tickets/{world.own_refs[0]}") as response:
            assert response.status == 200
            own = await response.text()
        assert "/status/" in own and "Cán bộ" not in own  # status link; no staff names
        other, missing = world.other_refs[0], "HL-2026-999999"
        bodies = []
        for ref in (other, missing):
            async with client.get(f"/web/tickets/{ref}") as response:
                assert response.status == 404
                bodies.append((await response.text()).replace(ref, "REF"))
            async with client.get(f"/api/v1/tickets/{ref}") as response:
                assert response.status == 404
        assert bodies[0] == bodies[1]  # someone else's ticket is indistinguishable from none
        assert W.TEXTS[2].format(n=1) not in bodies[0]
        for path in ("/api/v1/dashboard", "/web/chart.png", "/web/export.xlsx", "/web/export.csv",
                     "/api/v1/extensions/pending"):
            async with client.get(path) as response:
                assert response.status == 403, path


async def test_a_deactivated_person_is_signed_out_at_once(site: tuple[W.World, Served]) -> None:
    world, server = site
    leaving, _ = await make_staff(world.app, Role.MEMBER, "moj", name="Cán bộ sắp nghỉ")
    async with server.client() as client:
        await sign_in(client, world.app, leaving)
        async with client.get("/web/") as response:
            assert response.status == 200
        async with world.app.uow() as uow:
            person = await uow.session.get(Person, leaving.id)
            assert person is not None
            person.active = False
            await uow.commit()
        async with client.get("/web/") as response:
            assert response.status == 401


async def test_cookies_are_secure_behind_an_https_proxy(site: tuple[W.World, Served]) -> None:
    world, server = site
    link = await signin_link(world.app, world.coordinator)
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    async with server.client() as client:
        async with client.get(path_of(link), headers=proxy) as response:
            assert "Secure" in _cookie(response, sessions.CSRF_COOKIE)
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            page = await response.text()
        token = path_of(link).rsplit("/", 1)[1]
        client.cookie_jar.update_cookies({sessions.CSRF_COOKIE: csrf_of(page)})
        async with client.post("/signin", data={"token": token, "csrf": csrf_of(page)}, headers=proxy,
                               allow_redirects=False) as response:
            assert response.status == 303
            assert "Secure" in _cookie(response, sessions.COOKIE)


async def test_the_link_token_is_stored_only_as_a_hash(site: tuple[W.World, Served]) -> None:
    world, _ = site
    link = await signin_link(world.app, world.coordinator)
    token = path_of(link).rsplit("/", 1)[1]
    async with world.app.uow() as uow:
        keys = list((await uow.session.execute(select(KeyValue.key, KeyValue.value))).all())
    assert all(token not in k and token not in v for k, v in keys)
    assert any(k == token_key(signin.PREFIX, token) for k, _ in keys)
