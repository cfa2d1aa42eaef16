"""Working-group flows: join with an invite code, the queue, and working a ticket.

Every action is offered as a button on the ticket card and also as a typed command
(``/update HL-... text``) for people who prefer typing; both end in the same service call,
which re-checks role and state. Free-text answers (update, question, resolution, extension
reason) are the next message, kept in the conversation step so a restart loses nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from handlers import registration
from handlers.context import Context, stale
from handlers.render import group_names, open_buttons, rows, ticket_list
from handlers.router import Router, Step
from handlers.ticket_actions import ticket_for_action, visible_ticket
from hotline.domain import payloads as P
from hotline.domain.enums import Role
from hotline.domain.ids import row_id
from hotline.domain.reports import has_words
from hotline.errors import InvalidInput
from hotline.services import coordination, people, tickets
from hotline.services import permissions as perm
from storage.models import Person, Ticket

STAFF_TEXT = "staff_text"
EXT_DATE = "ext_date"
EXT_REASON = "ext_reason"
REASSIGN_GROUP_PICK = "reassign_group"
REASSIGN_PERSON_PICK = "reassign_person"
QUEUE_LIMIT = 30

#: Text actions: verb -> (prompt key, reply key).
_TEXT_ACTIONS = {
    P.UPDATE: ("engine.ask_update", "engine.update_sent"),
    P.ASK_INFO: ("engine.ask_question", "engine.question_sent"),
    P.RESOLVE: ("engine.ask_resolution", "engine.resolution_sent"),
}
_COMMAND_VERBS = {"update": P.UPDATE, "ask": P.ASK_INFO, "resolve": P.RESOLVE}
_DATE_FORMATS = (r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", r"(\d{4})-(\d{1,2})-(\d{1,2})")


# --- joining and the queue ---------------------------------------------------------------------


async def join(ctx: Context, arg: str) -> None:
    person = await people.join(ctx.uow, ctx.app, ctx.contact, arg,
                               display_name=ctx.event.display_name, language=ctx.lang)
    ctx.person = person
    group = await ctx.uow.people.group_by_id(person.group_id) if person.group_id else None
    ctx.say("engine.joined_group" if group is not None else "engine.joined",
            role=ctx.text(f"role.{person.role}"),
            group=group.name(ctx.lang) if group is not None else "")


async def queue(ctx: Context, _arg: str) -> None:
    person = ctx.require_staff()
    groups = await group_names(ctx)
    if perm.is_coordinator(person):
        sections = [("engine.queue_all", await ctx.uow.tickets.list(open_only=True,
                                                                     limit=QUEUE_LIMIT))]
    elif person.role == Role.LEAD.value:
        sections = [("engine.queue_group", await ctx.uow.tickets.list(
            open_only=True, group_id=person.group_id, limit=QUEUE_LIMIT))]
    else:
        own = await ctx.uow.tickets.list(open_only=True, assignee_id=person.id, limit=QUEUE_LIMIT)
        pool = await ctx.uow.tickets.list(open_only=True, group_id=person.group_id,
                                          unassigned=True, limit=QUEUE_LIMIT)
        sections = [("engine.queue_mine", own), ("engine.queue_unassigned", pool)]
    shown = [t for _, found in sections for t in found]
    if not shown:
        ctx.say("engine.queue_empty")
        return
    parts = [ticket_list(ctx, ctx.text(key, count=len(found)), found, groups)
             for key, found in sections if found]
    ctx.say_markup("\n\n".join(parts), buttons=open_buttons(ctx, shown))


# --- acknowledge, claim ------------------------------------------------------------------------


async def ack_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.ACK)
    await _acknowledge(ctx, ticket)


async def ack_command(ctx: Context, arg: str) -> None:
    ctx.require_staff()
    await _acknowledge(ctx, await visible_ticket(ctx, _need_ref(arg)))


async def _acknowledge(ctx: Context, ticket: Ticket) -> None:
    await tickets.acknowledge(ctx.uow, ctx.app, ticket, ctx.require_staff())
    ctx.say("engine.acknowledged", ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))


async def claim_button(ctx: Context, arg: str) -> None:
    await _claim(ctx, await ticket_for_action(ctx, arg, P.CLAIM))


async def claim_command(ctx: Context, arg: str) -> None:
    ctx.require_staff()
    await _claim(ctx, await visible_ticket(ctx, _need_ref(arg)))


async def _claim(ctx: Context, ticket: Ticket) -> None:
    await tickets.claim(ctx.uow, ctx.app, ticket, ctx.require_staff())
    ctx.say("engine.claimed", ref=ticket.ref, deadline=ctx.date(ticket.deadline_at),
            buttons=[[ctx.button("engine.btn.ack", P.build(P.ACK, ticket.ref))]])


def _need_ref(arg: str) -> str:
    ref = arg.split(" ", 1)[0]
    if not ref:
        raise InvalidInput("usage", key="engine.usage_ref")
    return ref


# --- update / ask for information / resolve ----------------------------------------------------


async def text_action_button(ctx: Context, arg: str, verb: str) -> None:
    ticket = await ticket_for_action(ctx, arg, verb)
    ctx.set_step(STAFF_TEXT, ref=ticket.ref, verb=verb)
    await prompt_text(ctx)


async def text_action_command(ctx: Context, arg: str, verb: str) -> None:
    ctx.require_staff()
    ref, _, text = arg.partition(" ")
    ticket = await visible_ticket(ctx, _need_ref(ref))
    if not text.strip():
        ctx.set_step(STAFF_TEXT, ref=ticket.ref, verb=verb)
        await prompt_text(ctx)
        return
    await _text_action(ctx, ticket, verb, text)


async def prompt_text(ctx: Context) -> None:
    data = ctx.data
    prompt_key = _TEXT_ACTIONS[data["verb"]][0]
    ctx.say(prompt_key, ref=data["ref"], buttons=[registration.cancel_row(ctx)])


async def handle_text(ctx: Context, text: str) -> None:
    if not has_words(text):
        raise InvalidInput("no words", key="engine.reason_need_words")
    data = ctx.data
    ticket = await visible_ticket(ctx, data["ref"])
    await _text_action(ctx, ticket, data["verb"], text)


async def _text_action(ctx: Context, ticket: Ticket, verb: str, text: str) -> None:
    actor = ctx.require_staff()
    if verb == P.UPDATE:
        await tickets.post_update(ctx.uow, ctx.app, ticket, actor, text)
    elif verb == P.ASK_INFO:
        await tickets.request_info(ctx.uow, ctx.app, ticket, actor, text)
    else:
        await tickets.resolve(ctx.uow, ctx.app, ticket, actor, text)
    ctx.clear_step()
    ctx.say(_TEXT_ACTIONS[verb][1], ref=ticket.ref)


# --- extensions --------------------------------------------------------------------------------


async def extend_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.EXTEND)
    ctx.set_step(EXT_DATE, ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))
    await prompt_date(ctx)


async def extend_command(ctx: Context, arg: str) -> None:
    """``/extend HL-... dd/mm/yyyy reason``; missing parts are asked for."""
    ctx.require_staff()
    parts = arg.split(None, 2)
    ticket = await visible_ticket(ctx, _need_ref(parts[0] if parts else ""))
    ctx.set_step(EXT_DATE, ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))
    if len(parts) < 2:
        await prompt_date(ctx)
        return
    await _accept_date(ctx, parts[1])
    if len(parts) == 3:
        await handle_reason(ctx, parts[2])
    else:
        await prompt_reason(ctx)


async def prompt_date(ctx: Context) -> None:
    ctx.say("engine.ask_ext_date", ref=ctx.data["ref"], deadline=ctx.data.get("deadline", ""),
            buttons=[registration.cancel_row(ctx)])


def parse_local_date(text: str) -> date:
    """dd/mm/yyyy as Vietnamese write dates (also d-m-yyyy, d.m.yyyy, and ISO yyyy-mm-dd)."""
    cleaned = text.strip()
    for index, pattern in enumerate(_DATE_FORMATS):
        match = re.fullmatch(pattern, cleaned)
        if match:
            a, b, c = (int(g) for g in match.groups())
            try:
                return date(c, b, a) if index == 0 else date(a, b, c)
            except ValueError:
                break
    raise InvalidInput("not a date", key="engine.bad_date")


def end_of_local_day(ctx: Context, day: date) -> datetime:
    """A new deadline "on 31/12" means the end of that working day, local time."""
    settings = ctx.app.settings
    hour = min(settings.work_end_hour, 23)
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(settings.timezone))


async def handle_date(ctx: Context, text: str) -> None:
    await _accept_date(ctx, text)
    await prompt_reason(ctx)


async def _accept_date(ctx: Context, text: str) -> None:
    day = parse_local_date(text)
    data = ctx.data
    ticket = await visible_ticket(ctx, data["ref"], for_update=False)
    new_deadline = end_of_local_day(ctx, day)
    if new_deadline <= ticket.deadline_at or new_deadline <= ctx.now:
        raise InvalidInput("not later", key="error.extension_not_later",
                           deadline=ctx.date(ticket.deadline_at))
    ctx.set_step(EXT_REASON, ref=data["ref"], date=day.isoformat())


async def prompt_reason(ctx: Context) -> None:
    day = date.fromisoformat(ctx.data["date"])
    ctx.say("engine.ask_ext_reason", ref=ctx.data["ref"],
            date=ctx.date(end_of_local_day(ctx, day)), buttons=[registration.cancel_row(ctx)])


async def handle_reason(ctx: Context, text: str) -> None:
    if not has_words(text):
        raise InvalidInput("no words", key="engine.reason_need_words")
    data = ctx.data
    ticket = await visible_ticket(ctx, data["ref"])
    new_deadline = end_of_local_day(ctx, date.fromisoformat(data["date"]))
    await coordination.request_extension(ctx.uow, ctx.app, ticket, ctx.require_staff(),
                                         new_deadline, text)
    ctx.clear_step()
    ctx.say("engine.extension_requested", ref=ticket.ref, date=ctx.date(new_deadline))


# --- reassignment ------------------------------------------------------------------------------


async def reassign_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.REASSIGN)
    actor = ctx.require_staff()
    if perm.is_coordinator(actor):
        ctx.set_step(REASSIGN_GROUP_PICK, ref=ticket.ref)
        await prompt_group(ctx)
        return
    await _member_menu(ctx, ticket, ticket.group_id)


async def prompt_group(ctx: Context) -> None:
    ref = ctx.data["ref"]
    groups = [g for g in await ctx.uow.people.groups() if g.active]
    buttons = [ctx.button("engine.btn.group", P.build_pair(P.REASSIGN_GROUP, ref, g.code),
                          group=g.name(ctx.lang))
               for g in groups]
    ctx.say("engine.choose_group", ref=ref,
            buttons=[*rows(buttons, 2), registration.cancel_row(ctx)])


async def reassign_group_button(ctx: Context, arg: str) -> None:
    ref, code = P.split_pair(arg)
    ticket = await ticket_for_action(ctx, ref, P.REASSIGN)
    group = await ctx.uow.people.group(code)
    if group is None or not group.active or not perm.is_coordinator(ctx.require_staff()):
        raise stale()
    await _member_menu(ctx, ticket, group.id)


async def _member_menu(ctx: Context, ticket: Ticket, group_id: int) -> None:
    ctx.set_step(REASSIGN_PERSON_PICK, ref=ticket.ref, group=group_id)
    if not await _candidates(ctx, ticket, group_id):
        ctx.clear_step()
        ctx.say("engine.group_has_nobody", ref=ticket.ref)
        return
    await prompt_person(ctx)


async def _candidates(ctx: Context, ticket: Ticket, group_id: int) -> list[tuple[Person, int]]:
    members = await ctx.uow.tickets.with_open_load([Role.MEMBER.value, Role.LEAD.value], group_id)
    return [(m, load) for m, load in members if m.id != ticket.assignee_id][:20]


async def prompt_person(ctx: Context) -> None:
    ticket = await visible_ticket(ctx, ctx.data["ref"], for_update=False)
    candidates = await _candidates(ctx, ticket, int(ctx.data["group"]))
    buttons = [ctx.button("engine.btn.person", P.build_pair(P.REASSIGN_TO, ticket.ref, m.id),
                          name=m.display_name, load=load)
               for m, load in candidates]
    ctx.say("engine.choose_person", ref=ticket.ref,
            buttons=[*rows(buttons, 2), registration.cancel_row(ctx)])


async def reassign_to_button(ctx: Context, arg: str) -> None:
    ref, raw_id = P.split_pair(arg)
    ticket = await ticket_for_action(ctx, ref, P.REASSIGN)
    actor = ctx.require_staff()
    target_id = row_id(raw_id)
    target = await ctx.uow.people.get(target_id) if target_id is not None else None
    if not isinstance(target, Person) or target.id == ticket.assignee_id or not (
        perm.can_reassign(actor, ticket, target)
    ):
        raise stale()
    await tickets.reassign(ctx.uow, ctx.app, ticket, actor, target)
    if ctx.step == REASSIGN_PERSON_PICK:
        ctx.clear_step()
    ctx.say("engine.reassigned", ref=ticket.ref, name=target.display_name)


def register(router: Router) -> None:
    router.command("join", join)
    router.command("queue", queue)
    router.command("ack", ack_command)
    router.command("claim", claim_command)
    for name, verb in _COMMAND_VERBS.items():
        router.command(name, lambda ctx, arg, verb=verb: text_action_command(ctx, arg, verb))
    router.command("extend", extend_command)
    router.button(P.ACK, ack_button)
    router.button(P.CLAIM, claim_button)
    for verb in _TEXT_ACTIONS:
        router.button(verb, lambda ctx, arg, verb=verb: text_action_button(ctx, arg, verb))
    router.button(P.EXTEND, extend_button)
    router.button(P.REASSIGN, reassign_button)
    router.button(P.REASSIGN_GROUP, reassign_group_button)
    router.button(P.REASSIGN_TO, reassign_to_button)
    router.step(STAFF_TEXT, Step(handle_text, prompt_text))
    router.step(EXT_DATE, Step(handle_date, prompt_date))
    router.step(EXT_REASON, Step(handle_reason, prompt_reason))
    router.step(REASSIGN_GROUP_PICK, Step.choice(prompt_group, frozenset({P.REASSIGN_GROUP})))
    router.step(REASSIGN_PERSON_PICK, Step.choice(prompt_person, frozenset({P.REASSIGN_TO})))

