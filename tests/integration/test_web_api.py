"""``docs/openapi.json`` describes exactly the API the server routes (no DB needed).

The responses themselves are validated against the document in ``test_web_numbers.py``.
"""

from __future__ import annotations

from aiohttp import web

from hotline.web.app import add_routes
from tests.browser.apicheck import load


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
