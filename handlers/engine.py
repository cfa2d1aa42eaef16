"""The conversation engine: one inbound event in, the replies out, one database transaction.

Per event, in a single transaction:

1. claim ``(channel, update_id)``; a redelivered update returns ``[]`` and changes nothing;
2. run the channel's intake hooks (e.g. a typed number becomes the remembered button press);
3. load the contact, its person and the conversation step in one query (from the database, so
   flows survive restarts and any worker can take the next message);
4. dispatch to one small handler. A ``HotlineError`` (bad input, forbidden, stale button) rolls
   the whole transaction back -- the action changes nothing -- and steps 1-3 are redone in a
   fresh one, where it becomes a translated answer, re-asking the current question if the
   caller is in the middle of a flow;
5. save the conversation step if it changed, write every reply to the outbox, commit, and
   return the replies (with their outbox ids).

An event from a group chat takes none of these steps beyond the first: a group is a public
place, so no handler runs and the sender's contact is not touched; ``handlers.group_chat``
decides the one public note it may get.

Anything unexpected rolls the whole transaction back, is logged without user text or secrets,
and gets a generic apology written in a fresh transaction. ``handle`` never raises.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from markupsafe import Markup

from handlers import common, coordinator, group_chat, registration, reporter, staff
from handlers.context import Context
from handlers.router import Router
from hotline.clock import local_midnight
from hotline.deps import App
from hotline.errors import HotlineError
from hotline.i18n import LANGUAGES, normalise_language, t
from hotline.messages import InboundEvent, OutboundMessage, sanitised
from hotline.services import people
from hotline.services.notify import enqueue
from storage.conversation_state import ConversationState
from storage.db import database_unreachable
from storage.models import Contact, Person
from storage.uow import UnitOfWork

log = logging.getLogger("hotline.engine")

#: Runs inside the event's transaction, after de-duplication, before dispatch; may rewrite it.
IntakeHook = Callable[[UnitOfWork, InboundEvent], Awaitable[InboundEvent]]


def build_router() -> Router:
    router = Router()
    common.register(router)
    registration.register(router, after=reporter.after_registration, other_skips=reporter.SKIPS)
    for area in (reporter, staff, coordinator):
        area.register(router)
    return router


class Engine:
    """Channel-agnostic: adapters build ``InboundEvent`` and deliver ``OutboundMessage``."""

    def __init__(self, app: App, *, intake: Sequence[IntakeHook] = ()) -> None:
        self.app = app
        self.router = build_router()
        self._intake = tuple(intake)

    async def handle(self, event: InboundEvent) -> list[OutboundMessage]:
        event = sanitised(event)  # NUL and lone surrogates, whichever channel forgot
        try:
            return await self._process(event)
        except Exception as exc:  # the chat adapter must keep running whatever happens
            _log_failure("engine failed", event, exc)
            if database_unreachable(exc):
                # Nothing was stored. Recording the update id now (with the apology) would turn
                # a passing outage into a lost report: leave it unclaimed, so the caller's retry
                # or Telegram's redelivery processes it (the reply has no outbox id: unsent).
                return [OutboundMessage(channel=event.channel, chat_id=event.chat_id,
                                        text=str(t("error.generic", normalise_language(event.language))))]
            return await self._apologise(event)

    async def _process(self, event: InboundEvent) -> list[OutboundMessage]:
        app = self.app
        if event.is_group_chat:
            return await self._in_group(event)
        async with app.uow() as uow:
            now = app.clock.now()
            ctx = await self._open(uow, event, now)
            if ctx is None:
                return []
            try:
                await self.router.dispatch(ctx)
            except HotlineError as error:
                # The refused action must change nothing: drop the whole transaction and answer
                # from a fresh one (cheaper on the common path than a savepoint per event).
                await uow.rollback()
                ctx = await self._open(uow, event, now)
                if ctx is None:  # another worker took the redelivered update meanwhile
                    return []
                await self._explain(ctx, error)
            replies = ctx.replies
            if event.kind == "button" and event.message_id and replies:
                replies[0] = replace(replies[0], retire_buttons_of=event.message_id)
            await uow.conversations.save(ctx.conv, now)
            person_id = ctx.person.id if ctx.person is not None else None
            rows = [enqueue(uow, reply, now=now, contact_id=ctx.contact.id, person_id=person_id)
                    for reply in replies]
            await uow.commit()
        return [replace(reply, meta={**reply.meta, "outbox_id": row.id})
                for reply, row in zip(replies, rows, strict=True)]

    async def _in_group(self, event: InboundEvent) -> list[OutboundMessage]:
        """A group chat is a public place: no handler runs and the sender's contact is not
        touched; at most one public note goes back (``handlers.group_chat``)."""
        async with self.app.uow() as uow:
            now = self.app.clock.now()
            if not await uow.conversations.claim_update(event.channel, event.update_id, now):
                return []
            replies = await group_chat.answer_in_group(self.app, uow, event, now)
            rows = [enqueue(uow, reply, now=now) for reply in replies]
            await uow.commit()
        return [replace(reply, meta={**reply.meta, "outbox_id": row.id})
                for reply, row in zip(replies, rows, strict=True)]

    async def _open(self, uow: UnitOfWork, event: InboundEvent, now: datetime) -> Context | None:
        """Claim the update and load the caller; None for a redelivered update."""
        if not await uow.conversations.claim_update(event.channel, event.update_id, now):
            return None
        for hook in self._intake:
            event = await hook(uow, event)
        contact, person, conv, filed_today = await uow.conversations.caller(
            event.channel, event.user_id,
            filed_since=local_midnight(now, self.app.settings.timezone))
        if contact is None:
            contact = await people.touch_contact(
                uow, self.app, event.channel, event.user_id, event.chat_id, event.display_name
            )
        else:
            people.refresh_contact(contact, event.chat_id, event.display_name, now)
        if person is not None:
            event = group_chat.resume_deep_link(event)
        lang = self._language(event, person, conv)
        return Context(app=self.app, uow=uow, event=event, contact=contact, person=person,
                       conv=conv, lang=lang, now=now,
                       filed_today=filed_today if person is not None else None)

    def _language(self, event: InboundEvent, person: Person | None, conv: ConversationState) -> str:
        """The person's choice; before registration the choice made in the flow, else the
        client's hint on first contact, else the configured default."""
        if person is not None:
            return person.language
        chosen = (conv.data or {}).get("lang")
        if chosen in LANGUAGES:
            return str(chosen)
        hint = (event.language or "").split("-")[0].split("_")[0].lower()
        return hint if hint in LANGUAGES else self.app.settings.default_language

    async def _explain(self, ctx: Context, error: HotlineError) -> None:
        """Answer a refused action in the caller's language and re-ask the pending question."""
        try:
            text = t(error.key, ctx.lang, **error.params)
        except (KeyError, IndexError, ValueError):
            text = t("error.generic", ctx.lang)
        try:
            await self.router.reprompt(ctx)
        except HotlineError:
            ctx.replies = []
        prompt = ctx.replies
        if prompt:
            first = prompt[0]
            prompt[0] = replace(first, text=str(text + Markup("\n\n") + Markup(first.text)))
            ctx.replies = prompt
        else:
            ctx.say_markup(text)

    async def _apologise(self, event: InboundEvent) -> list[OutboundMessage]:
        """A generic error reply in a fresh transaction (which also records the update id,
        so a redelivery does not fail the same way twice)."""
        lang = normalise_language(event.language)
        try:
            async with self.app.uow() as uow:
                now = self.app.clock.now()
                if not await uow.conversations.claim_update(event.channel, event.update_id, now):
                    return []
                # A group's apology is nobody's message: no contact (a 403 from the group must
                # not mark the sender's private contact inactive), no personal language.
                contact = (None if event.is_group_chat
                           else await uow.people.contact(event.channel, event.user_id))
                person = (await uow.people.get(contact.person_id)
                          if contact is not None and contact.person_id else None)
                if person is not None:
                    lang = person.language
                message = OutboundMessage(channel=event.channel, chat_id=event.chat_id,
                                          text=str(t("error.generic", lang)))
                row = enqueue(uow, message, now=now,
                              contact_id=contact.id if isinstance(contact, Contact) else None,
                              person_id=person.id if person is not None else None)
                await uow.commit()
                return [replace(message, meta={"outbox_id": row.id})]
        except Exception as exc:  # database down: still answer, never raise to the channel
            _log_failure("could not record the apology", event, exc)
            return [OutboundMessage(channel=event.channel, chat_id=event.chat_id,
                                    text=str(t("error.generic", lang)))]


def committed(replies: list[OutboundMessage]) -> bool:
    """Whether ``Engine.handle`` committed its work: every reply it returns carries the id of
    its outbox row, except the apology it could not write because the database is down. The
    callers (the runtime's retry, the inbox) process an update again until this holds."""
    return all("outbox_id" in reply.meta for reply in replies)


def _log_failure(what: str, event: InboundEvent, exc: BaseException) -> None:
    """Where it failed, never what the user wrote: exception messages can quote SQL parameters
    (user text), so only the exception types and the frame locations are logged."""
    chain = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 5:
        chain.append(type(current).__name__)
        current = current.__cause__ or current.__context__
    frames = traceback.extract_tb(exc.__traceback__)[-12:]
    stack = "\n".join(f"  {f.filename}:{f.lineno} in {f.name}" for f in frames)
    log.error("%s on %s update %s (kind %s): %s\n%s", what, event.channel, event.update_id,
              event.kind, " <- ".join(chain), stack)
