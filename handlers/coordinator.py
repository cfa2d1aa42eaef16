"""Coordinator flows: triage, recategorise, duplicates, priority, rejection, extension decisions.

Extension approve/refuse buttons arrive in the coordinator's notification (queued by
``coordination.request_extension``); the press is re-checked against the extension's current
status, so a request decided by another coordinator meanwhile gets "no longer valid".
"""

from __future__ import annotations

from markupsafe import Markup

from handlers import registration
from handlers.context import Context, stale
from handlers.render import action_buttons, group_names, open_buttons, rows, ticket_card, ticket_list
from handlers.router import Router, Step
from handlers.ticket_actions import actions_for, ticket_for_action, visible_ticket
from hotline.domain import payloads as P
from hotline.domain.enums import OPEN_STATES, ExtensionStatus, Priority, TicketState
from hotline.domain.ids import row_id
from hotline.domain.reports import has_words
from hotline.errors import HotlineError, InvalidInput
from hotline.services import coordination, queries, similarity
from hotline.services import permissions as perm
from storage.models import Ticket

REJECT_REASON = "reject_reason"
RECAT_PICK = "recat_pick"
PRIORITY_PICK = "priority_pick"
TRIAGE_LIMIT = 30


async def triage(ctx: Context, _arg: str) -> None:
    ctx.require_coordinator()
    found = await ctx.uow.tickets.list(open_only=True, needs_triage=True, limit=TRIAGE_LIMIT)
    if not found:
        ctx.say("engine.triage_empty")
        return
    header = ctx.text("engine.triage_header", count=len(found))
    text = ticket_list(ctx, header, found, await group_names(ctx))
    pairs = []
    for ticket in found:
        best = await similarity.likely_duplicates(ctx.uow, ctx.app, ticket, limit=1)
        if best:
            pairs.append(ctx.text("engine.triage_dup_line", ref=ticket.ref, original=best[0].ticket.ref,
                                  score=f"{round(best[0].score * 100)}%"))
    if pairs:
        text = Markup(text) + Markup("\n\n") + ctx.text("engine.triage_dup_header") + Markup("\n") \
            + Markup("\n").join(pairs)
    ctx.say_markup(text, buttons=open_buttons(ctx, found, P.TRIAGE))


async def triage_button(ctx: Context, arg: str) -> None:
    """The "triage" button of a notification or the /triage list: the card plus categories."""
    if ctx.person is None or not perm.is_coordinator(ctx.person):
        raise stale()
    try:
        ticket = await visible_ticket(ctx, arg, for_update=False)
    except HotlineError:
        raise stale() from None
    if TicketState(ticket.state) not in OPEN_STATES:
        raise stale()
    card = await ticket_card(ctx, ticket, staff=True)
    suggestions = await _suggestions(ctx, ticket)
    if suggestions:
        card = card + Markup("\n\n") + suggestions
    if ticket.needs_triage:
        ctx.say_markup(card)
        ctx.set_step(RECAT_PICK, ref=ticket.ref)
        await prompt_category(ctx)
    else:
        ctx.say_markup(card, buttons=action_buttons(ctx, ticket, await actions_for(ctx, ticket)))


async def prompt_category(ctx: Context) -> None:
    """The category list of a recategorisation (or a triage): a choice prompt."""
    ref = ctx.data["ref"]
    buttons = [ctx.button("engine.btn.category", P.build_pair(P.RECATEGORISE_TO, ref, code),
                          category=cat.name(ctx.lang),
                          group=ctx.app.taxonomy.group(cat.group).name(ctx.lang))
               for code, cat in ctx.app.taxonomy.categories.items()]
    ctx.say("engine.choose_category", ref=ref,
            buttons=[*rows(buttons, 1), registration.cancel_row(ctx)])


async def recategorise_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.RECATEGORISE)
    ctx.set_step(RECAT_PICK, ref=ticket.ref)
    await prompt_category(ctx)


async def recategorise_to_button(ctx: Context, arg: str) -> None:
    ref, code = P.split_pair(arg)
    ticket = await ticket_for_action(ctx, ref, P.RECATEGORISE)
    if code not in ctx.app.taxonomy.categories:
        raise stale()
    if ctx.step == RECAT_PICK:
        ctx.clear_step()
    await _recategorise(ctx, ticket, code)


async def recategorise_command(ctx: Context, arg: str) -> None:
    ctx.require_coordinator()
    ref, _, code = arg.partition(" ")
    if not ref or not code.strip():
        raise InvalidInput("usage", key="engine.usage_recat",
                           codes=", ".join(ctx.app.taxonomy.codes))
    code = code.strip().lower()
    if code not in ctx.app.taxonomy.categories:
        raise InvalidInput("unknown category", key="engine.unknown_category", code=code[:40],
                           codes=", ".join(ctx.app.taxonomy.codes))
    await _recategorise(ctx, await visible_ticket(ctx, ref), code)


async def _recategorise(ctx: Context, ticket: Ticket, code: str) -> None:
    await coordination.recategorise(ctx.uow, ctx.app, ticket, ctx.require_coordinator(), code)
    group = await ctx.uow.people.group_by_id(ticket.group_id)
    ctx.say("engine.recategorised", ref=ticket.ref,
            category=ctx.app.taxonomy.category(code).name(ctx.lang),
            group=group.name(ctx.lang) if group is not None else "",
            deadline=ctx.date(ticket.deadline_at))


async def _suggestions(ctx: Context, ticket: Ticket) -> Markup:
    """Likely originals of ``ticket`` with their scores, or nothing."""
    found = await similarity.likely_duplicates(ctx.uow, ctx.app, ticket)
    if not found:
        return Markup("")
    lines = [ctx.text("engine.dup_suggest_header", ref=ticket.ref)]
    lines += [ctx.text("engine.dup_suggest_line", ref=m.ticket.ref, score=f"{round(m.score * 100)}%",
                       title=m.ticket.title, state=ctx.text(f"state.{m.ticket.state}"),
                       dup=ticket.ref) for m in found]
    return Markup("\n").join(lines)


async def duplicate(ctx: Context, arg: str) -> None:
    """``/dup HL-A HL-B``: A duplicates B; A's reporter follows B from now on.
    ``/dup HL-A``: the likely originals of A, with scores."""
    ctx.require_coordinator()
    parts = arg.split()
    if len(parts) == 1:
        ticket = await visible_ticket(ctx, parts[0], for_update=False)
        found = await _suggestions(ctx, ticket)
        ctx.say_markup(found or ctx.text("engine.dup_suggest_none", ref=ticket.ref))
        return
    if len(parts) != 2:
        raise InvalidInput("usage", key="engine.usage_dup")
    ticket = await visible_ticket(ctx, parts[0])
    original = await visible_ticket(ctx, parts[1])
    await coordination.link_duplicate(ctx.uow, ctx.app, ticket, original,
                                      ctx.require_coordinator())
    ctx.say("engine.duplicate_linked", ref=ticket.ref, original=original.ref)


async def priority_command(ctx: Context, arg: str) -> None:
    ctx.require_coordinator()
    ref, _, value = arg.partition(" ")
    value = value.strip().lower()
    if not ref or value not in {p.value for p in Priority}:
        raise InvalidInput("usage", key="engine.usage_priority",
                           values=", ".join(p.value for p in Priority))
    await _set_priority(ctx, await visible_ticket(ctx, ref), Priority(value))


async def priority_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.PRIORITY)
    ctx.set_step(PRIORITY_PICK, ref=ticket.ref, priority=ticket.priority)
    await prompt_priority(ctx)


async def prompt_priority(ctx: Context) -> None:
    ref, current = ctx.data["ref"], ctx.data["priority"]
    buttons = [ctx.button(f"priority.{p.value}", P.build_pair(P.PRIORITY_SET, ref, p.value))
               for p in Priority if p.value != current]
    ctx.say("engine.choose_priority", ref=ref, priority=ctx.text(f"priority.{current}"),
            buttons=[buttons, registration.cancel_row(ctx)])


async def priority_set_button(ctx: Context, arg: str) -> None:
    ref, value = P.split_pair(arg)
    ticket = await ticket_for_action(ctx, ref, P.PRIORITY)
    if value not in {p.value for p in Priority} or value == ticket.priority:
        raise stale()
    if ctx.step == PRIORITY_PICK:
        ctx.clear_step()
    await _set_priority(ctx, ticket, Priority(value))


async def _set_priority(ctx: Context, ticket: Ticket, priority: Priority) -> None:
    await coordination.set_priority(ctx.uow, ctx.app, ticket, ctx.require_coordinator(), priority)
    ctx.say("engine.priority_set", ref=ticket.ref, priority=ctx.text(f"priority.{priority.value}"),
            deadline=ctx.date(ticket.deadline_at))


async def reject_command(ctx: Context, arg: str) -> None:
    ctx.require_coordinator()
    ref, _, reason = arg.partition(" ")
    if not ref:
        raise InvalidInput("usage", key="engine.usage_ref")
    ticket = await visible_ticket(ctx, ref)
    if not reason.strip():
        ctx.set_step(REJECT_REASON, ref=ticket.ref)
        await prompt_reject(ctx)
        return
    await _reject(ctx, ticket, reason)


async def reject_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.REJECT)
    ctx.set_step(REJECT_REASON, ref=ticket.ref)
    await prompt_reject(ctx)


async def prompt_reject(ctx: Context) -> None:
    ctx.say("engine.ask_reject_reason", ref=ctx.data["ref"],
            buttons=[registration.cancel_row(ctx)])


async def handle_reject(ctx: Context, text: str) -> None:
    if not has_words(text):
        raise InvalidInput("no words", key="engine.reason_need_words")
    await _reject(ctx, await visible_ticket(ctx, ctx.data["ref"]), text)


async def _reject(ctx: Context, ticket: Ticket, reason: str) -> None:
    await coordination.reject(ctx.uow, ctx.app, ticket, ctx.require_coordinator(), reason)
    ctx.clear_step()
    ctx.say("engine.rejected", ref=ticket.ref)


async def extension_button(ctx: Context, arg: str, approve: bool) -> None:
    person = ctx.person
    ext_id = row_id(arg)
    if person is None or not perm.is_coordinator(person) or ext_id is None:
        raise stale()
    ext = await queries.extension(ctx.uow, ext_id)
    if ext is None or ext.status != ExtensionStatus.PENDING.value:
        raise stale()
    decided = await coordination.decide_extension(ctx.uow, ctx.app, ext.id, person, approve)
    ticket = await ctx.uow.tickets.get(decided.ticket_id)
    assert ticket is not None
    ctx.say("engine.extension_approved" if approve else "engine.extension_refused",
            ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))


def register(router: Router) -> None:
    router.command("triage", triage)
    router.command("recat", recategorise_command)
    router.command("dup", duplicate)
    router.command("priority", priority_command)
    router.command("reject", reject_command)
    router.button(P.TRIAGE, triage_button)
    router.button(P.RECATEGORISE, recategorise_button)
    router.button(P.RECATEGORISE_TO, recategorise_to_button)
    router.button(P.PRIORITY, priority_button)
    router.button(P.PRIORITY_SET, priority_set_button)
    router.button(P.REJECT, reject_button)
    router.button(P.EXT_APPROVE, lambda ctx, arg: extension_button(ctx, arg, True))
    router.button(P.EXT_REFUSE, lambda ctx, arg: extension_button(ctx, arg, False))
    router.step(REJECT_REASON, Step(handle_reject, prompt_reject))
    router.step(RECAT_PICK, Step.choice(prompt_category, frozenset({P.RECATEGORISE_TO})))
    router.step(PRIORITY_PICK, Step.choice(prompt_priority, frozenset({P.PRIORITY_SET})))
