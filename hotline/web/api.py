"""JSON API ``/api/v1``: the same numbers and lists as the pages (``views``), as JSON.

Everything but the public board needs a signed-in session (the cookie the sign-in link sets)
and checks the role as the pages do. ``docs/openapi.json`` describes every response, and the
tests validate the real responses against it.
"""

from __future__ import annotations

from aiohttp import web

from hotline.web import params, views
from hotline.web.http import dumps, json_response, require_person
from hotline.web.state import state_of

MAX_LIMIT = 500


async def board(request: web.Request) -> web.Response:
    params.check_query_size(request.query_string)
    state = state_of(request)
    data, version = await views.board(state)
    key = ("board.json", version)
    body = state.page(key)
    if body is None:
        body = dumps(data).encode("utf-8")
        state.keep_page(key, body)
    return web.Response(body=body, content_type="application/json", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=30"})


async def me(request: web.Request) -> web.Response:
    who, person = await require_person(request)
    state = state_of(request)
    group = None
    if person.group_id is not None:
        async with state.read.sessions() as session:
            from storage.models import OwnerGroup

            found = await session.get(OwnerGroup, person.group_id)
            group = found.code if found is not None else None
    return json_response({"id": person.id, "name": person.display_name, "role": person.role,
                          "group": group, "language": person.language,
                          "dashboard": who.sees_dashboard})


async def dashboard(request: web.Request) -> web.Response:
    _, person = await require_person(request, dashboard=True)
    params.check_query_size(request.query_string)
    filters = params.parse_filters(request.query, state_of(request).app.taxonomy)
    return json_response(await views.dashboard(state_of(request), person, filters))


async def tickets(request: web.Request) -> web.Response:
    who, person = await require_person(request)
    params.check_query_size(request.query_string)
    limit = params.integer(request.query, "limit", views.PAGE_SIZE, 1, MAX_LIMIT)
    offset = params.integer(request.query, "offset", 0, 0, 10_000_000)
    state = state_of(request)
    if who.is_reporter:
        return json_response(await views.reporter_tickets(state, person, offset, limit))
    filters = params.parse_filters(request.query, state.app.taxonomy)
    return json_response(await views.staff_tickets(state, person, filters, offset, limit))


async def ticket(request: web.Request) -> web.Response:
    _, person = await require_person(request)
    params.check_query_size(request.query_string)
    ref = params.ticket_ref(request.match_info["ref"])
    return json_response(await views.ticket_page(state_of(request), person, ref))


async def extensions_pending(request: web.Request) -> web.Response:
    _, person = await require_person(request, dashboard=True)
    params.check_query_size(request.query_string)
    filters = params.parse_filters(request.query, state_of(request).app.taxonomy)
    items = await views.pending_extensions(state_of(request), person, filters)
    return json_response({"items": items})
