"""Commands everybody has: /help, /status (alias /ticket), opening a ticket card, odd content.

/status answers reporters and staff alike through ``visible_ticket``: a ticket the caller may
not see gets exactly the "not found" answer of a missing one.
"""

from __future__ import annotations

from handlers import reporter, staff
from handlers.context import Context, stale
from handlers.render import action_buttons, ticket_card
from handlers.router import Router
from handlers.ticket_actions import actions_for, visible_ticket
from hotline.domain import payloads as P
from hotline.domain.enums import Role
from hotline.errors import HotlineError, InvalidInput
from hotline.services.signin import create_signin_link

_HELP_BY_ROLE = {
    Role.REPORTER.value: "engine.help_reporter",
    Role.MEMBER.value: "engine.help_member",
    Role.LEAD.value: "engine.help_lead",
    Role.COORDINATOR.value: "engine.help_coordinator",
    Role.ADMIN.value: "engine.help_coordinator",
    Role.LEADER.value: "engine.help_leader",
}

_WORKS_TICKETS = {Role.MEMBER.value, Role.LEAD.value, Role.COORDINATOR.value, Role.ADMIN.value}


async def help_command(ctx: Context, _arg: str) -> None:
    role = ctx.person.role if ctx.person is not None else None
    ctx.say(_HELP_BY_ROLE.get(role or "", "engine.help_new"))


async def status(ctx: Context, arg: str) -> None:
    """Without a ticket code: the caller's own list (a reporter's /mine, staff's /queue) rather
    than a syntax lesson -- nobody remembers their HL-... code; anyone else gets the usage."""
    if not arg:
        role = ctx.person.role if ctx.person is not None else None
        if role == Role.REPORTER.value:
            await reporter.mine(ctx, "")
        elif role in _WORKS_TICKETS:
            await staff.queue(ctx, "")
        else:  # not registered, or a leader (who follows the digests, not a queue)
            raise InvalidInput("usage", key="engine.usage_status")
        return
    await show_ticket(ctx, arg)


async def show_ticket(ctx: Context, ref_text: str) -> None:
    ticket = await visible_ticket(ctx, ref_text, for_update=False)
    person = ctx.require_person()
    card = await ticket_card(ctx, ticket, staff=person.role != Role.REPORTER.value)
    verbs = await actions_for(ctx, ticket)
    ctx.say_markup(card, buttons=action_buttons(ctx, ticket, verbs))


async def open_button(ctx: Context, arg: str) -> None:
    try:
        await visible_ticket(ctx, arg, for_update=False)
    except HotlineError:
        raise stale() from None
    await show_ticket(ctx, arg)


async def web(ctx: Context, _arg: str) -> None:
    """A one-time sign-in link to the dashboard, sent into the caller's own chat (the chat
    account is the credential). The token is stored in this event's transaction, so it exists
    exactly when the reply carrying it is committed."""
    person = ctx.require_person()
    link = await create_signin_link(ctx.uow, ctx.app, person)
    ctx.say("engine.web_link", link=link, minutes=ctx.app.settings.web_signin_ttl_minutes)


async def unsupported(ctx: Context) -> None:
    ctx.say("engine.unsupported")


def register(router: Router) -> None:
    router.command("help", help_command, keeps_step=True)
    router.command("status", status)
    router.command("ticket", status)
    router.command("web", web)
    router.button(P.OPEN, open_button)
    router.unsupported = unsupported
