"""Browser sessions: a signed cookie naming a server-side session row.

The cookie value is ``<session id>.<HMAC>``: the signature lets every request with a forged or
tampered cookie be refused without touching the database, and the row (hash of the id, in
``key_values``) lets sign-out and expiry be enforced on the server, which a purely stateless
cookie could not. The person is loaded on every request, so a role change or a deactivation
takes effect at once -- the web checks what the chat checks, with the current data.

CSRF tokens are derived from the session id with the same key (a different HMAC label), so
forms need no extra storage; before sign-in, a random double-submit cookie does the job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from hotline.deps import App, Deps
from hotline.services import tokens
from storage.db import upsert_insert
from storage.models import KeyValue
from storage.uow import UnitOfWork

PREFIX = "web.session."
SECRET_KEY = "web.session_secret"
COOKIE = "hl_session"
CSRF_COOKIE = "hl_csrf"


@dataclass(frozen=True)
class Session:
    sid: str
    person_id: int
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, label: str, value: str) -> str:
    return _b64(hmac.new(secret, f"{label}:{value}".encode(), hashlib.sha256).digest())


def sign(secret: bytes, sid: str) -> str:
    return f"{sid}.{_mac(secret, 'session', sid)}"


def unsign(secret: bytes, cookie: str | None) -> str | None:
    """The session id if the cookie carries our signature, else None."""
    if not cookie or len(cookie) > 200:
        return None
    sid, _, mac = cookie.partition(".")
    if not tokens.well_formed(sid) or not mac:
        return None
    if not hmac.compare_digest(mac, _mac(secret, "session", sid)):
        return None
    return sid


def csrf_token(secret: bytes, sid: str) -> str:
    return _mac(secret, "csrf", sid)


def csrf_ok(secret: bytes, sid: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(str(given), csrf_token(secret, sid))


async def load_secret(app: App) -> bytes:
    """The configured secret, else one random secret created once and shared via the database
    (every worker agrees, and sessions survive restarts)."""
    if app.settings.web_session_secret is not None:
        return app.settings.web_session_secret.get_secret_value().encode("utf-8")
    async with app.uow() as uow:
        stmt = upsert_insert(uow.session, KeyValue).values(
            key=SECRET_KEY, value=secrets.token_urlsafe(48), updated_at=app.clock.now()
        ).on_conflict_do_nothing(index_elements=["key"])
        await uow.session.execute(stmt)
        value = (await uow.session.execute(
            select(KeyValue.value).where(KeyValue.key == SECRET_KEY))).scalar_one()
        await uow.commit()
    return value.encode("utf-8")


async def open_session(uow: UnitOfWork, deps: Deps, person_id: int) -> Session:
    now = deps.clock.now()
    lifetime = timedelta(hours=deps.settings.web_session_hours)
    await tokens.purge(uow, PREFIX, now - lifetime)
    sid = secrets.token_urlsafe(32)
    expires = now + lifetime
    await tokens.put(uow, tokens.token_key(PREFIX, sid),
                     {"person_id": person_id, "expires_at": expires.isoformat()}, now)
    return Session(sid, person_id, expires)


async def find_session(uow: UnitOfWork, deps: Deps, sid: str) -> Session | None:
    value = await tokens.get(uow, tokens.token_key(PREFIX, sid))
    person_id = tokens.live_person_id(value, deps.clock.now())
    if value is None or person_id is None:
        return None
    return Session(sid, person_id, datetime.fromisoformat(str(value["expires_at"])))


async def close_session(uow: UnitOfWork, sid: str) -> None:
    await tokens.remove(uow, tokens.token_key(PREFIX, sid))
