"""Security headers and error answers for every web route, in one place.

Each response of ours gets a strict Content-Security-Policy (no scripts at all: the pages need
none; styles and images from this origin only; no framing), ``nosniff``, no referrer (sign-in
and status links must not leak to other sites through the Referer header) and HSTS over HTTPS.

Errors become a page in the reader's language, or ``{"error": {...}}`` under ``/api/``, with the
right status: 400 bad parameter, 401 signed out, 403 role or CSRF, 404 unknown route or a
ticket one may not see, 405, 413/415 odd forms, 429 too many lookups, 500 (logged without any
user text). When the web shares a server with the chat webhooks, their routes pass through
untouched.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

from hotline.errors import Forbidden, HotlineError, InvalidInput, NotFound
from hotline.i18n import LANGUAGES, t
from hotline.web.http import LANG_COOKIE, WebError, fmt_for, is_api, is_https, json_response, viewer
from hotline.web.state import begin_request, state_of

log = logging.getLogger("hotline.web")

ROUTE_PREFIX = "web."
CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
          429: "too_many_requests", 500: "internal_error"}


def is_ours(request: web.Request) -> bool:
    """Our named routes, and requests no route matched (they get our 404/405 page)."""
    match = request.match_info
    if isinstance(match, web.UrlMappingMatchInfo) and match.http_exception is not None:
        return True
    name = match.route.name if match.route is not None else None
    return bool(name and name.startswith(ROUTE_PREFIX))


def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    h = response.headers
    h["Content-Security-Policy"] = CSP
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "no-referrer"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    h.setdefault("Cache-Control", "no-store")
    try:
        if is_https(request):
            h["Strict-Transport-Security"] = "max-age=31536000"
    except KeyError:
        pass


def _status_of(error: HotlineError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, InvalidInput):
        return 400
    return 400


async def error_response(request: web.Request, status: int, key: str, params: dict[str, object],
                         headers: dict[str, str] | None = None) -> web.Response:
    try:
        who = await viewer(request)
        lang = who.lang
    except Exception:  # the error may be about the language parameter itself
        who = None
        lang = state_of(request).app.settings.default_language
    try:
        message = str(t(key, lang, **params))
    except (KeyError, IndexError, ValueError):
        message = str(t("web.error.generic", lang))
    if is_api(request):
        return json_response({"error": {"status": status, "code": _CODES.get(status, "error"),
                                        "message": message}}, status=status, headers=headers)
    state = state_of(request)
    fmt = fmt_for(request, lang)
    body = state.renderer.render(
        "error.html.j2", fmt, viewer=who, status=status, message=message,
        title=t(f"web.http.{status}", lang) if f"{status}" in _TITLED else t("web.http.other", lang),
        switch_url=None, other_lang="en" if lang == "vi" else "vi", path=request.path,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers=headers)


_TITLED = {"400", "401", "403", "404", "405", "413", "415", "429", "500"}


@web.middleware
async def web_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_ours(request):
        return await handler(request)
    begin_request()
    try:
        response = await handler(request)
    except WebError as error:
        response = await error_response(request, error.status, error.key, error.params, error.headers)
    except HotlineError as error:
        key = error.key if error.key.startswith(("web.", "error.")) else "web.error.generic"
        response = await error_response(request, _status_of(error), key, error.params)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        key = "web.error.not_found" if error.status == 404 else (
            "web.error.method" if error.status == 405 else "web.error.generic")
        response = await error_response(request, error.status, key, {})
        if error.status == 405 and "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
    except Exception as error:  # never a traceback to the browser, never user text in logs
        frames = traceback.extract_tb(error.__traceback__)[-8:]
        log.error("web request %s %s failed: %s\n%s", request.method, request.path[:80],
                  type(error).__name__, "\n".join(f"  {f.filename}:{f.lineno} in {f.name}" for f in frames))
        response = await error_response(request, 500, "web.error.generic", {})
    secure_headers(request, response)
    chosen = request.query.getall("lang", [])
    if len(chosen) == 1 and chosen[0] in LANGUAGES and request.cookies.get(LANG_COOKIE) != chosen[0]:
        response.set_cookie(LANG_COOKIE, chosen[0], max_age=365 * 86400, httponly=True,
                            samesite="Lax", secure=is_https(request), path="/")
    return response
