"""Ticket lists and ticket cards in the caller's language (Telegram HTML subset, user text escaped).

Everything visible comes from ``templates/locales/<lang>/engine.toml``; this module only
chooses which pieces to show to whom (staff see the assignee and the description, reporters
see state, owner group, deadline and the recent history).
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

from handlers.context import Context
from hotline.domain import payloads as P
from hotline.domain.enums import Role
from hotline.i18n import format_local_datetime
from hotline.messages import Button
from hotline.services import permissions as perm
from hotline.services import queries
from hotline.services.tickets import rag_of
from storage.models import OwnerGroup, Person, Ticket

RAG_MARK = {"green": "🟢", "amber": "🟠", "red": "🔴"}
MAX_DESCRIPTION = 700
RECENT_EVENTS = 5

#: Button label key per verb, in ``engine.toml``.
ACTION_LABELS = {
    P.CLAIM: "engine.btn.claim",
    P.ACK: "engine.btn.ack",
    P.UPDATE: "engine.btn.update",
    P.ASK_INFO: "engine.btn.ask",
    P.RESOLVE: "engine.btn.resolve",
    P.EXTEND: "engine.btn.extend",
    P.REASSIGN: "engine.btn.reassign",
    P.RECATEGORISE: "engine.btn.recategorise",
    P.PRIORITY: "engine.btn.priority",
    P.REJECT: "engine.btn.reject",
    P.ANSWER: "engine.btn.answer",
    P.CONFIRM: "engine.btn.confirm",
    P.REOPEN: "engine.btn.reopen",
    P.RATE_OPEN: "engine.btn.rate",
}


def rows(buttons: Sequence[Button], per_row: int = 2) -> list[list[Button]]:
    return [list(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def action_buttons(ctx: Context, ticket: Ticket, verbs: Sequence[str]) -> list[list[Button]]:
    return rows([ctx.button(ACTION_LABELS[v], P.build(v, ticket.ref)) for v in verbs], 3)


def rag_text(ctx: Context, ticket: Ticket) -> Markup:
    status = rag_of(ctx.app, ticket, ctx.now)
    return Markup("{} {}").format(RAG_MARK[status], ctx.text(f"rag.{status}"))


def category_name(ctx: Context, code: str) -> str:
    category = ctx.app.taxonomy.categories.get(code)
    return category.name(ctx.lang) if category is not None else code


async def group_names(ctx: Context) -> dict[int, str]:
    return {g.id: g.name(ctx.lang) for g in await ctx.uow.people.groups()}


def shown_title(ctx: Context, ticket: Ticket) -> str:
    """A ticket's title, except to a reporter of another organisation (one following the kind):
    they see its category, never another organisation's words."""
    person = ctx.person
    if person is None or person.role != Role.REPORTER.value or perm.is_reporter_side(person, ticket):
        return ticket.title
    return category_name(ctx, ticket.category)


def ticket_line(ctx: Context, ticket: Ticket, groups: dict[int, str]) -> Markup:
    return ctx.text(
        "engine.ticket_line",
        rag=RAG_MARK[rag_of(ctx.app, ticket, ctx.now)],
        ref=ticket.ref,
        state=ctx.text(f"state.{ticket.state}"),
        deadline=ctx.date(ticket.deadline_at),
        group=groups.get(ticket.group_id, ""),
        title=shown_title(ctx, ticket),
    )


def ticket_list(ctx: Context, header: Markup, tickets: Sequence[Ticket],
                groups: dict[int, str]) -> Markup:
    lines = [header, *(ticket_line(ctx, t, groups) for t in tickets)]
    return Markup("\n").join(lines)


def open_buttons(ctx: Context, tickets: Sequence[Ticket], verb: str = P.OPEN,
                 limit: int = 8) -> list[list[Button]]:
    """One button per listed ticket, so a tap (or a number on Zalo/console) opens its card."""
    return rows([Button(label=t.ref, payload=P.build(verb, t.ref)) for t in tickets[:limit]], 2)


async def ticket_card(ctx: Context, ticket: Ticket, *, staff: bool) -> Markup:
    group = await ctx.uow.people.group_by_id(ticket.group_id)
    parts = [
        ctx.text(
            "engine.card",
            ref=ticket.ref,
            title=shown_title(ctx, ticket),
            state=ctx.text(f"state.{ticket.state}"),
            rag=rag_text(ctx, ticket),
            category=category_name(ctx, ticket.category),
            group=group.name(ctx.lang) if isinstance(group, OwnerGroup) else "",
            priority=ctx.text(f"priority.{ticket.priority}"),
            deadline=ctx.date(ticket.deadline_at),
        )
    ]
    if ticket.needs_triage:
        parts.append(ctx.text("engine.card_triage"))
    if ticket.paused_since is not None:
        parts.append(ctx.text("engine.card_paused"))
    if staff:
        assignee = await ctx.uow.people.get(ticket.assignee_id) if ticket.assignee_id else None
        org = await queries.organisation(ctx.uow, ticket.organisation_id)
        description = ticket.description
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 1] + "…"
        parts.append(
            ctx.text(
                "engine.card_staff",
                assignee=assignee.display_name if isinstance(assignee, Person)
                else ctx.text("engine.nobody"),
                organisation=org.name if org is not None else "",
                extensions=ticket.extension_count,
                description=description,
            )
        )
    events = await queries.recent_events(ctx.uow, ticket.id, RECENT_EVENTS)
    if events:
        parts.append(ctx.text("engine.card_history"))
        tz = ctx.app.settings.timezone
        for event in events:
            parts.append(
                ctx.text(
                    "engine.card_event",
                    at=format_local_datetime(event.at, ctx.lang, tz),
                    what=ctx.text(f"engine.event.{event.kind}"),
                )
            )
    return Markup("\n").join(parts)

