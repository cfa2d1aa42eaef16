"""``docs/openapi.json`` describes exactly the API the server routes (no DB needed).

The responses themselves are validated against the document in ``test_web_numbers.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from hotline.deps import App
from hotline.web.app import add_routes
from tests.browser.apicheck import load

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def test_openapi_lists_every_api_route_and_nothing_else() -> None:
    target = web.Application()
    add_routes(target.router)
    routed = set()
    for resource in target.router.resources():
        path = resource.canonical
        if path.startswith("/api/v1/"):
            routed.add(path.removeprefix("/api/v1"))
    doc = load()
    assert set(doc["paths"]) == routed
    assert doc["servers"] == [{"url": "/api/v1"}]


def test_openapi_references_resolve_and_errors_are_documented() -> None:
    doc = load()
    schemas = doc["components"]["schemas"]
    text = str(doc)
    for name in schemas:
        assert f"#/components/schemas/{name}" in text or name in ("Error",)
    for path, item in doc["paths"].items():
        op = item["get"]
        assert "200" in op["responses"], path
        for status, response in op["responses"].items():
            ref = str(response["content"]["application/json"]["schema"])
            assert ("Error" in ref) == (status != "200"), (path, status)
        public = path == "/board"
        assert (op["security"] == []) == public, path


async def test_the_web_mounts_beside_webhooks_without_touching_them(app: App) -> None:
    """``hotline run`` adds the web to the webhook server's aiohttp app: the webhook routes and
    their own middleware keep working exactly as before, the pages get their headers."""
    import aiohttp

    from hotline.web.app import setup_web

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/telegram/webhook" and request.headers.get("X-Secret") != "s":
            return web.Response(status=403, text="Forbidden")
        return await handler(request)

    async def webhook(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    target = web.Application(middlewares=[guard])
    target.router.add_post("/telegram/webhook", webhook)
    setup_web(target, app)
    runner = web.AppRunner(target)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession(base) as client:
            async with client.post("/telegram/webhook") as response:
                assert response.status == 403 and await response.text() == "Forbidden"
                assert "Content-Security-Policy" not in response.headers
            async with client.post("/telegram/webhook", headers={"X-Secret": "s"}) as response:
                assert response.status == 200 and await response.json() == {"ok": True}
                assert "Content-Security-Policy" not in response.headers
            async with client.get("/board") as response:
                assert response.status == 200 and "Content-Security-Policy" in response.headers
            async with client.get("/api/v1/board") as response:
                assert response.status == 200
    finally:
        await runner.cleanup()
