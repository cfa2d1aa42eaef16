"""HTML pages: public board and status lookup, sign-in, dashboard, ticket list and ticket page.

Handlers are thin: parse parameters (``params``), check the viewer (``http``), build the page's
data (``views``, the same data the JSON API returns), render a template. Anything refused is
raised and answered by the middleware.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from hotline.digests.chart import chart_png
from hotline.services import signin
from hotline.web import exports, params, sessions, views
from hotline.web.http import (
    Viewer,
    WebError,
    client_ip,
    fmt_for,
    is_https,
    redirect,
    require_person,
    viewer,
)
from hotline.web.state import BOARD_SPECS, WebState, state_of
from storage.uow import UnitOfWork

HTML = "text/html"


def page(request: web.Request, who: Viewer, template: str, *, status: int = 200,
         cache: str = "no-store", **context: Any) -> web.Response:
    state = state_of(request)
    fmt = fmt_for(request, who.lang)
    other = "en" if who.lang == "vi" else "vi"
    switch = str(request.rel_url.update_query(lang=other))
    body = state.renderer.render(template, fmt, viewer=who, switch_url=switch, other_lang=other,
                                 path=request.path, **context)
    response = web.Response(text=body, content_type=HTML, charset="utf-8", status=status)
    response.headers["Cache-Control"] = cache
    return response


def _filters(request: web.Request) -> params.Filters:
    params.check_query_size(request.query_string)
    return params.parse_filters(request.query, state_of(request).app.taxonomy)


def _form_context(request: web.Request, filters: params.Filters) -> dict[str, Any]:
    state = state_of(request)
    return {
        "filters": filters,
        "period_choices": params.period_choices(state.app.clock.now(), state.tz),
        "groups": sorted(state.app.taxonomy.groups),
        "categories": list(state.app.taxonomy.categories),
        "states": [s for s in ("new", "assigned", "in_progress", "waiting_reporter", "resolved",
                               "closed", "rejected", "reopened")],
        "rags": ["green", "amber", "red"],
        "kinds": ["enterprise", "ministry", "locality", "other"],
    }


# ---------------------------------------------------------------------------------------------
# Public
# ---------------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/board"})


async def board(request: web.Request) -> web.Response:
    """Rendered once per language and version of the figures for everyone not signed in
    (the page then differs only by the header of a signed-in viewer)."""
    params.check_query_size(request.query_string)
    who = await viewer(request)
    state = state_of(request)
    data, version = await views.board(state)
    if who.signed_in:
        return page(request, who, "board.html.j2", data=data, cache="private, no-store")
    key = ("board.html", who.lang, request.path_qs, version)
    body = state.page(key)
    if body is None:
        body = page(request, who, "board.html.j2", data=data).body  # type: ignore[assignment]
        state.keep_page(key, body)  # type: ignore[arg-type]
    response = web.Response(body=body, content_type=HTML, charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=30"
    return response


async def board_chart(request: web.Request) -> web.Response:
    """The board's chart, drawn from the snapshot its page was made of (``v``, the version
    the page links with), so the chart and the numbers beside it are of one moment. Without
    ``v``, the current snapshot; a version no longer kept is gone (the page is old)."""
    params.check_query_size(request.query_string)
    who = await viewer(request)
    state = state_of(request)
    version = params.single(request.query, "v")
    if version is None:
        snapshot, version = await state.board_snapshot()
    else:
        found = state.snapshot_for(version)
        if found is None:
            raise WebError(404, "web.error.not_found")
        snapshot = found
    month = snapshot.figures[BOARD_SPECS.index("month")]

    async def draw() -> bytes:
        return await state.worker.call_sync(chart_png, month.digest, who.lang)

    entry = await state.charts.get(("board-chart", version, who.lang), version, draw, expires=False)
    return _png(entry.value, "public, max-age=3600" if params.single(request.query, "v") else
                "public, max-age=30")


def _png(data: bytes, cache: str) -> web.Response:
    response = web.Response(body=data, content_type="image/png")
    response.headers["Cache-Control"] = cache
    return response


async def status(request: web.Request) -> web.Response:
    state = state_of(request)
    who = await viewer(request)
    allowed, wait = state.status_limiter.allow(client_ip(request))
    if not allowed:
        raise WebError(429, "web.error.too_many", headers={"Retry-After": str(int(wait) + 1)})
    data = await views.status_page(state, request.match_info["ref"], request.match_info["code"])
    if data is None:
        raise WebError(404, "web.error.status_not_found")
    return page(request, who, "status.html.j2", data=data, cache="no-store")


# ---------------------------------------------------------------------------------------------
# Sign-in and sign-out
# ---------------------------------------------------------------------------------------------


async def signin_page(request: web.Request) -> web.Response:
    """A button, not an automatic sign-in: link previews must not use up the link."""
    state = state_of(request)
    who = await viewer(request)
    token = request.match_info["token"]
    async with UnitOfWork(state.read.sessions) as uow:
        usable = await signin.peek_signin_token(uow, state.app, token)
    if not usable:
        raise WebError(403, "web.error.bad_link")
    csrf = secrets.token_urlsafe(24)
    response = page(request, who, "signin.html.j2", token=token, csrf=csrf)
    response.set_cookie(sessions.CSRF_COOKIE, csrf, max_age=1800, httponly=True, samesite="Strict",
                        secure=is_https(request), path="/signin")
    return response


async def signin_submit(request: web.Request) -> web.Response:
    state = state_of(request)
    allowed, wait = state.signin_limiter.allow(client_ip(request))
    if not allowed:
        raise WebError(429, "web.error.too_many", headers={"Retry-After": str(int(wait) + 1)})
    form = await _form(request)
    given = form.get("csrf", "")
    cookie = request.cookies.get(sessions.CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(str(given), cookie):
        raise WebError(403, "web.error.csrf")
    token = str(form.get("token", ""))
    async with state.app.uow() as uow:
        person = await signin.redeem_signin_token(uow, state.app, token)
        if person is None:
            await uow.commit()  # a presented token is used up even when it failed
            raise WebError(403, "web.error.bad_link")
        session = await sessions.open_session(uow, state.app, person.id)
        await uow.commit()
    response = redirect("/web/")
    response.set_cookie(sessions.COOKIE, sessions.sign(state.secret, session.sid),
                        max_age=state.app.settings.web_session_hours * 3600, httponly=True,
                        samesite="Lax", secure=is_https(request), path="/")
    response.del_cookie(sessions.CSRF_COOKIE, path="/signin")
    return response


async def signout(request: web.Request) -> web.Response:
    state = state_of(request)
    who = await viewer(request)
    form = await _form(request)
    if who.sid is None:
        return redirect("/board")
    if not sessions.csrf_ok(state.secret, who.sid, form.get("csrf")):
        raise WebError(403, "web.error.csrf")
    async with state.app.uow() as uow:
        await sessions.close_session(uow, who.sid)
        await uow.commit()
    response = redirect("/board")
    response.del_cookie(sessions.COOKIE, path="/")
    return response


async def _form(request: web.Request) -> Any:
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise WebError(415, "web.error.bad_form")
    if request.content_length is not None and request.content_length > 4096:
        raise WebError(413, "web.error.bad_form")
    try:
        return await request.post()
    except ValueError:
        raise WebError(400, "web.error.bad_form") from None


# ---------------------------------------------------------------------------------------------
# Signed in
# ---------------------------------------------------------------------------------------------


async def web_root(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/web/"})


async def dashboard(request: web.Request) -> web.Response:
    who, person = await require_person(request)
    if not who.sees_dashboard:
        return web.Response(status=303, headers={"Location": "/web/tickets"})
    filters = _filters(request)
    key = await private_key(request, who, person, filters.period)
    found = _private_hit(request, key)
    if found is not None:
        return found
    data = await views.dashboard(state_of(request), person, filters)
    return _keep_private(request, key, page(request, who, "dashboard.html.j2", data=data,
                                            query=filters.query(), **_form_context(request, filters)))


async def tickets(request: web.Request) -> web.Response:
    who, person = await require_person(request)
    state = state_of(request)
    params.check_query_size(request.query_string)
    page_no = params.integer(request.query, "page", 1, 1, 100000)
    offset, limit = (page_no - 1) * views.PAGE_SIZE, views.PAGE_SIZE
    if who.is_reporter:
        data = await views.reporter_tickets(state, person, offset, limit)
        return page(request, who, "mine.html.j2", data=data, page_no=page_no)
    filters = _filters(request)
    key = await private_key(request, who, person, filters.period)
    found = _private_hit(request, key)
    if found is not None:
        return found
    data = await views.staff_tickets(state, person, filters, offset, limit)
    return _keep_private(request, key, page(request, who, "tickets.html.j2", data=data,
                                            page_no=page_no, query=filters.query(),
                                            **_form_context(request, filters)))


async def private_key(request: web.Request, who: Viewer, person: Any, spec: str) -> tuple[Any, ...]:
    """What a signed-in page built from the figures of period ``spec`` depends on: the session
    (its CSRF token is on the page), the person as just re-read (role, group, organisation,
    name), the language, the address, and the data's version -- the watermark and the cached
    figures it would be built from (which a new event or the ttl replaces). Same key, same
    page; anything else changed, a new key."""
    state = state_of(request)
    mark = await state.watermark()
    entry = await state.period_entry(spec, mark=mark)
    route = request.match_info.route.name
    return (route, who.sid, who.lang, request.path_qs, mark, entry.watermark, entry.computed_at,
            person.id, person.role, person.group_id, person.organisation_id, person.display_name,
            person.active)


def _private_hit(request: web.Request, key: tuple[Any, ...]) -> web.Response | None:
    body = state_of(request).private_page(key)
    if body is None:
        return None
    response = web.Response(body=body, content_type=HTML, charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _keep_private(request: web.Request, key: tuple[Any, ...], response: web.Response) -> web.Response:
    if response.status == 200 and isinstance(response.body, bytes):
        state_of(request).keep_private_page(key, response.body)
    return response


async def ticket(request: web.Request) -> web.Response:
    who, person = await require_person(request)
    params.check_query_size(request.query_string)
    ref = params.ticket_ref(request.match_info["ref"])
    data = await views.ticket_page(state_of(request), person, ref)
    return page(request, who, "ticket.html.j2", data=data)


async def chart(request: web.Request) -> web.Response:
    who, _ = await require_person(request, dashboard=True)
    filters = _filters(request)
    state = state_of(request)
    return _png(await _chart_bytes(state, filters, who.lang), "private, no-store")


async def _chart_bytes(state: WebState, filters: params.Filters, lang: str) -> bytes:
    base, _ = await state.period_figures(filters.period)
    mark = await state.watermark()
    key = ("chart", filters, lang, base.period.end)

    async def draw() -> bytes:
        digest = await state.filtered(base, filters)
        return await state.worker.call_sync(chart_png, digest, lang)

    return (await state.charts.get(key, mark, draw)).value


async def export(request: web.Request) -> web.Response:
    who, person = await require_person(request, dashboard=True)
    fmt = request.match_info["fmt"]
    filters = _filters(request)
    sheet = params.choice(request.query, "sheet", ("tickets", "events")) or "tickets"
    name, content_type, body = await exports.export_file(state_of(request), person, filters, fmt,
                                                         sheet, who.lang)
    response = web.Response(body=body, content_type=content_type.split(";")[0],
                            charset="utf-8" if "charset" in content_type else None)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
