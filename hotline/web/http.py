"""Per-request plumbing: who is asking, from where, in which language, and HTTP errors.

``WebError`` carries a status and a catalogue key; the middleware turns it (and
``HotlineError``) into an HTML page or a JSON error depending on the path, so handlers only
raise. Role checks live here and call ``hotline.services.permissions`` -- the rules the chat
commands use.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import web

from hotline.domain.enums import Role
from hotline.i18n import LANGUAGES, normalise_language
from hotline.web import sessions
from hotline.web.render import Fmt
from hotline.web.state import WebState, state_of
from storage.models import Person
from storage.uow import UnitOfWork

LANG_COOKIE = "hl_lang"
#: Roles that see the working-group dashboard (everyone but reporters).
DASHBOARD_ROLES = frozenset({Role.MEMBER.value, Role.LEAD.value, Role.COORDINATOR.value,
                             Role.LEADER.value, Role.ADMIN.value})


class WebError(Exception):
    """An answer with a status: 400 bad parameter, 401 not signed in, 403, 404, 429."""

    def __init__(self, status: int, key: str, message: str = "", *, headers: dict[str, str] | None = None,
                 **params: Any) -> None:
        super().__init__(message or key)
        self.status = status
        self.key = key
        self.params = params
        self.headers = headers or {}


@dataclass
class Viewer:
    person: Person | None
    sid: str | None
    lang: str
    csrf: str | None

    @property
    def signed_in(self) -> bool:
        return self.person is not None

    @property
    def is_reporter(self) -> bool:
        return self.person is not None and self.person.role == Role.REPORTER.value

    @property
    def sees_dashboard(self) -> bool:
        return self.person is not None and self.person.role in DASHBOARD_ROLES


VIEWER_KEY: web.RequestKey[Viewer] = web.RequestKey("hotline_viewer", Viewer)


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _trusted(state: WebState, remote: str | None) -> bool:
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in net for net in state.trusted_proxies)


def client_ip(request: web.Request) -> str:
    """The caller's address; behind a trusted reverse proxy, the one it reports."""
    state = state_of(request)
    remote = request.remote or "unknown"
    if not _trusted(state, remote):
        return remote
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()][-8:]
    for hop in reversed(hops):
        if not _trusted(state, hop):
            return hop[:64]
    return hops[0][:64] if hops else remote


def is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    state = state_of(request)
    if _trusted(state, request.remote):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto:
            return proto == "https"
    base = state.app.settings.public_base_url or ""
    return base.startswith("https://")


def query_language(request: web.Request) -> str | None:
    values = request.query.getall("lang", [])
    if not values:
        return None
    if len(values) > 1 or values[0] not in LANGUAGES:
        raise WebError(400, "web.error.bad_parameter", name="lang", why="vi or en")
    return values[0]


def pick_language(request: web.Request, person: Person | None) -> str:
    chosen = query_language(request)
    if chosen:
        return chosen
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGUAGES:
        return str(cookie)
    if person is not None and person.language in LANGUAGES:
        return person.language
    header = request.headers.get("Accept-Language", "")
    for part in header.split(",")[:8]:
        lang = part.split(";")[0].strip()
        if lang and normalise_language(lang) == lang.split("-")[0].lower():
            return normalise_language(lang)
    return state_of(request).app.settings.default_language


async def viewer(request: web.Request) -> Viewer:
    """The signed-in person (re-read from the database on every request) or an anonymous one."""
    cached = request.get(VIEWER_KEY)
    if isinstance(cached, Viewer):
        return cached
    state = state_of(request)
    person: Person | None = None
    sid = sessions.unsign(state.secret, request.cookies.get(sessions.COOKIE))
    if sid is not None:
        async with UnitOfWork(state.read.sessions) as uow:
            found = await sessions.find_session(uow, state.app, sid)
            if found is not None:
                person = await uow.people.get(found.person_id)
        if person is None or not person.active:
            person, sid = None, None
    lang = pick_language(request, person)
    result = Viewer(person, sid, lang, sessions.csrf_token(state.secret, sid) if sid else None)
    request[VIEWER_KEY] = result
    return result


async def require_person(request: web.Request, *, dashboard: bool = False) -> tuple[Viewer, Person]:
    """401 when not signed in; 403 when the role may not use this page."""
    who = await viewer(request)
    if who.person is None:
        raise WebError(401, "web.error.signed_out")
    if dashboard and who.person.role not in DASHBOARD_ROLES:
        raise WebError(403, "web.error.forbidden")
    return who, who.person


def fmt_for(request: web.Request, lang: str) -> Fmt:
    state = state_of(request)
    return Fmt(lang, state.tz, state.app.taxonomy)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, dumps=dumps, headers=headers)


def redirect(location: str) -> web.Response:
    """303: after a POST the browser follows with a GET."""
    return web.Response(status=303, headers={"Location": location})
