"""Group chats are public places: what the bot does when it is spoken to in one.

Everybody in a group reads everything posted there, so the bot never acts there for one person
and never posts anything addressed to one person (sign-in links, invite redemption, notices,
drafts, ticket cards, lists, digests). The rule, as the engine applies it to an event whose
``is_group_chat`` is set (Telegram groups and supergroups, Zalo Bot groups):

- a command (``/start``, ``/help``, ``/web``, ``/status HL-...``, ...) or a press on a button of
  an old bot message is not executed; it gets one short public note pointing to the private
  chat with the bot (on Telegram a deep link ``t.me/<bot>?start=<command>``, which continues the
  command there). The note is the same for everybody: it does not even say whether the sender
  is registered. The pressed keyboard is removed from the group message;
- ``/join CODE`` in a group: the code has just been shown to the whole group, so a live invite
  with that code is cancelled and the note asks for a new code, to be sent privately. The answer
  is the same whether or not the code existed (a group is no oracle for invite codes);
- anything else (text, photos, documents, stickers) is ignored: it is no report and gets no
  answer, so the bot never chatters in a group;
- the sender's contact is neither created nor touched: a person's contact is their private
  chat only, so nothing for them is ever routed to a group.

Nothing is stored for a group event but its update id (de-duplication) and the note.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from hotline.deps import App
from hotline.i18n import normalise_language, t
from hotline.messages import InboundEvent, OutboundMessage
from hotline.services import people
from storage.uow import UnitOfWork

#: Commands a deep link from a group may continue in the private chat (``/start web`` -> ``/web``
#: for a registered person). Only commands without arguments that could carry a secret.
CONTINUABLE = frozenset({"help", "web", "status", "mine", "queue", "report", "digest", "lang"})

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@\S*)?(?:\s+(.*))?$", re.DOTALL)


def command_of(text: str | None) -> tuple[str, str] | None:
    """``("join", "ABCDE-FGHIJ")`` for ``/join@bot ABCDE-FGHIJ``; None for what is no command."""
    match = _COMMAND.match((text or "").strip())
    if match is None:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


def private_link(event: InboundEvent, command: str | None) -> str | None:
    """Where the person can write to the bot privately; the deep link continues ``command``."""
    base = event.private_chat_url
    if not base:
        return None
    if command in CONTINUABLE:
        return f"{base}?start={command}"
    return f"{base}?start=private"


async def answer_in_group(app: App, uow: UnitOfWork, event: InboundEvent,
                          now: datetime) -> list[OutboundMessage]:
    """The public replies to one group event (at most one note), after any invite it exposed
    was cancelled in ``uow``. The caller claims the update and commits."""
    if event.kind == "button":
        command: str | None = None
    elif event.kind == "message" and (parsed := command_of(event.text)) is not None:
        command, arg = parsed
        if command == "join" and arg:
            await people.cancel_exposed_invite(uow, app, arg)
    else:
        return []
    lang = normalise_language(event.language or app.settings.default_language)
    link = private_link(event, command)
    key = "engine.group.join" if command == "join" else "engine.group.private_only"
    text = t(key, lang) + "\n" + (t("engine.group.link", lang, link=link) if link
                                  else t("engine.group.no_link", lang))
    note = OutboundMessage(channel=event.channel, chat_id=event.chat_id, text=str(text),
                           retire_buttons_of=event.message_id if event.kind == "button" else None)
    return [note]


def resume_deep_link(event: InboundEvent) -> InboundEvent:
    """``/start web`` in a private chat (a deep link from a group note) becomes ``/web``.

    Only for a registered person (the caller checks): a newcomer's ``/start`` registers first.
    """
    if event.is_group_chat or event.kind != "message":
        return event
    parsed = command_of(event.text)
    if parsed is None or parsed[0] != "start" or parsed[1] not in CONTINUABLE:
        return event
    return replace(event, text="/" + parsed[1])
