"""Password-less sign-in: ``/web`` in the bot returns a one-time link bound to the caller.

The chat channel already authenticated the person (their Telegram/Zalo account or the local
console), so a link sent into their own chat is the credential. It is single use, expires in
minutes (``HOTLINE_WEB_SIGNIN_TTL_MINUTES``), and only its hash is stored. Opening the link
shows a button; the sign-in happens on the POST, because chat apps fetch links to draw
previews and a GET that consumed the token would burn it before the person taps it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from hotline.deps import Deps
from hotline.links import signin_url
from hotline.services import tokens
from storage.models import Person
from storage.uow import UnitOfWork

PREFIX = "web.signin."


async def create_signin_link(uow: UnitOfWork, deps: Deps, person: Person) -> str:
    """Store a fresh one-time token for ``person`` and return the absolute link.

    Runs inside the caller's unit of work (the engine's transaction for ``/web``), so the
    token exists exactly when the reply carrying it is committed to the outbox.
    """
    now = deps.clock.now()
    ttl = timedelta(minutes=deps.settings.web_signin_ttl_minutes)
    await tokens.purge(uow, PREFIX, now - ttl)
    token = secrets.token_urlsafe(32)
    await tokens.put(uow, tokens.token_key(PREFIX, token),
                     {"person_id": person.id, "expires_at": tokens.until(now, ttl)}, now)
    return signin_url(deps.settings, token)


async def redeem_signin_token(uow: UnitOfWork, deps: Deps, token: str) -> Person | None:
    """The person the link was made for, or None (forged, expired, already used, person gone).

    A presented token is deleted whatever happens next, so an expired link cannot be retried
    either; the caller must commit for that to stick.
    """
    if not tokens.well_formed(token):
        return None
    value = await tokens.take(uow, tokens.token_key(PREFIX, token))
    person_id = tokens.live_person_id(value, deps.clock.now())
    if person_id is None:
        return None
    person = await uow.people.get(person_id)
    if person is None or not person.active:
        return None
    return person


async def peek_signin_token(uow: UnitOfWork, deps: Deps, token: str) -> bool:
    """Whether the link is still usable, without using it (the confirmation page)."""
    if not tokens.well_formed(token):
        return False
    value = await tokens.get(uow, tokens.token_key(PREFIX, token))
    return value is not None and not tokens.expired(value, deps.clock.now())
