"""Reporter flows: file a report in one message and one tap, follow it, answer, confirm, rate, reopen.

Reporting is the product's front door, so it is short: a registered reporter who writes their
problem gets the classification back at once with a "send" button; only when the classifier is
unsure do they pick from the top three categories (or "not sure", which goes to coordinator
triage). Several messages and photos/documents before sending are gathered into one draft.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from markupsafe import Markup

from handlers import registration
from handlers.context import Context, stale
from handlers.render import open_buttons, rows, ticket_list
from handlers.router import Router, Step
from handlers.ticket_actions import ticket_for_action, visible_ticket
from hotline.clock import local_midnight
from hotline.domain import payloads as P
from hotline.domain.enums import OPEN_STATES, Role, TicketState
from hotline.domain.rating import RATEABLE_STATES, STARS, finished_at, rating_open
from hotline.domain.reports import EXAMPLE_EN, EXAMPLE_VI, has_words, is_report
from hotline.errors import HotlineError, InvalidInput
from hotline.links import status_url
from hotline.services import kinds, people, queries, similarity, tickets
from hotline.services import permissions as perm
from hotline.services.tickets import AttachmentIn
from storage.models import Ticket

REPORT_DESC = "report_desc"
REPORT_CONFIRM = "report_confirm"
REPORT_PICK = "report_pick"
REPORT_SIMILAR = "report_similar"
REPORT_ADD = "report_add"
REPORT_ADD_CONFIRM = "report_add_confirm"
RATE_STARS = "rate_stars"
ANSWER = "answer"
RATE_COMMENT = "rate_comment"
REOPEN_REASON = "reopen_reason"

DRAFT_VERBS = frozenset({P.DRAFT_FILE, P.DRAFT_PICK, P.DRAFT_UNSURE, P.DRAFT_CHANGE,
                         P.DRAFT_ADD})
ADD_VERBS = frozenset({P.DRAFT_ADD_YES, P.DRAFT_ADD_NO})
SIMILAR_VERBS = frozenset({P.SIMILAR_FOLLOW, P.SIMILAR_FILE})
TOP_CANDIDATES = 3
MINE_LIMIT = 30
_MINE_STATES = [*(s.value for s in OPEN_STATES), TicketState.RESOLVED.value]


def event_attachments(ctx: Context) -> list[dict[str, Any]]:
    return [asdict(a) for a in ctx.event.attachments]


def _cancel_row(ctx: Context) -> list[Any]:
    return registration.cancel_row(ctx)


# --- drafting ----------------------------------------------------------------------------------


async def idle(ctx: Context, text: str) -> None:
    """A message outside any flow: a reporter is describing a problem."""
    person = ctx.person
    attachments = event_attachments(ctx)
    reported = is_report(text)
    if person is None:
        # Only a real description rides along to become the first report after the profile.
        pending = {"text": text if reported else "", "att": attachments}
        await registration.begin(ctx, pending=pending if reported or attachments else None)
        return
    if person.role != Role.REPORTER.value:
        ctx.say("engine.staff_idle")
        return
    if not reported and not attachments:
        explain_not_report(ctx)
        return
    await start_draft(ctx, text if reported else "", attachments)


def explain_not_report(ctx: Context) -> None:
    """What a report is, with an example, to somebody whose message is not one."""
    ctx.say("engine.not_a_report", example=EXAMPLE_VI if ctx.lang == "vi" else EXAMPLE_EN)


def not_a_report() -> InvalidInput:
    return InvalidInput("not a description", key="engine.not_a_report_short")


async def report(ctx: Context, arg: str) -> None:
    if ctx.person is None:
        pending = {"text": arg, "att": []} if is_report(arg) else None
        await registration.begin(ctx, pending=pending, then="report")
        return
    if arg and not is_report(arg):
        raise not_a_report()
    await start_draft(ctx, arg, [])


async def start_draft(ctx: Context, text: str, attachments: list[dict[str, Any]]) -> None:
    ctx.require_reporter()
    await _check_daily_limit(ctx)
    draft = {"draft": secrets.token_hex(3), "text": "", "att": attachments}
    if not is_report(text):
        if text:
            explain_not_report(ctx)
        ctx.set_step(REPORT_DESC, **draft)
        if attachments:
            ctx.say("engine.attachment_kept", count=len(attachments))
        await prompt_description(ctx)
        return
    draft["text"] = _check_length(ctx, text)
    await _classify_and_present(ctx, draft)


async def _check_daily_limit(ctx: Context) -> None:
    """Refuse before the reporter types a whole report (filing checks again, atomically)."""
    person = ctx.require_reporter()
    limit = ctx.app.settings.daily_report_limit
    filed = ctx.filed_today
    if filed is None:
        filed = await ctx.uow.tickets.count_filed_since(
            person.id, local_midnight(ctx.now, ctx.app.settings.timezone))
    if filed >= limit:
        raise InvalidInput("daily report limit reached", key="error.daily_limit", limit=limit)


def _check_length(ctx: Context, text: str) -> str:
    limit = ctx.app.settings.max_message_chars
    if len(text) > limit:
        raise InvalidInput("report too long", key="error.text_too_long", limit=limit)
    return text


async def prompt_description(ctx: Context) -> None:
    ctx.say("engine.ask_description", buttons=[_cancel_row(ctx)])


async def more_description(ctx: Context, text: str) -> None:
    """The description asked for (after /report, or after photos sent first): a real report,
    else the question again with what a report is."""
    data = ctx.data
    if "draft" not in data:
        raise stale()
    if text and not is_report(text):
        raise not_a_report()
    combined = "\n".join(part for part in (data.get("text", ""), text) if part)
    data["text"] = _check_length(ctx, combined)
    data["att"] = [*data.get("att", []), *event_attachments(ctx)]
    if not data["text"]:
        ctx.set_step(REPORT_DESC, **_draft_of(data))
        ctx.say("engine.attachment_kept", count=len(data["att"]))
        await prompt_description(ctx)
        return
    await _classify_and_present(ctx, data)


async def more_attachments(ctx: Context) -> None:
    """Photos or documents sent at the draft's question belong to the report (nothing typed)."""
    data = ctx.data
    data["att"] = [*data.get("att", []), *event_attachments(ctx)]
    ctx.set_step(ctx.step, **_draft_of(data) | ({"choices": data["choices"]}
                                                 if "choices" in data else {}))
    await prompt_draft(ctx)


def _draft_of(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("draft", "text", "att", "cat", "conf", "cands", "seen")
            if k in data}


# --- adding details to a draft: chosen, typed, then confirmed ------------------------------------


async def add_button(ctx: Context, arg: str) -> None:
    data = _draft_button(ctx, arg)
    ctx.set_step(REPORT_ADD, **_draft_of(data), back=ctx.step)
    await prompt_add(ctx)


async def prompt_add(ctx: Context) -> None:
    ctx.say("engine.ask_details", buttons=[[ctx.button("engine.btn.back",
                                                       P.build(P.DRAFT_ADD_NO, ctx.data["draft"]))]])


async def handle_add(ctx: Context, text: str) -> None:
    data = ctx.data
    if "draft" not in data:
        raise stale()
    if not has_words(text):
        raise InvalidInput("no words", key="engine.details_need_words")
    _check_length(ctx, data["text"] + "\n" + text)
    ctx.set_step(REPORT_ADD_CONFIRM, **_draft_of(data), back=data.get("back"), more=text)
    await prompt_add_confirm(ctx)


async def prompt_add_confirm(ctx: Context) -> None:
    data = ctx.data
    nonce = data["draft"]
    ctx.say("engine.confirm_details", details=data.get("more", ""),
            buttons=[[ctx.button("engine.btn.add_yes", P.build(P.DRAFT_ADD_YES, nonce)),
                      ctx.button("engine.btn.add_no", P.build(P.DRAFT_ADD_NO, nonce))]])


def _adding(ctx: Context, nonce: str) -> dict[str, Any]:
    data = ctx.data
    if ctx.step not in (REPORT_ADD, REPORT_ADD_CONFIRM) or data.get("draft") != nonce:
        raise stale()
    return data


async def add_yes_button(ctx: Context, arg: str) -> None:
    data = _adding(ctx, arg)
    if ctx.step != REPORT_ADD_CONFIRM or not data.get("more"):
        raise stale()
    data["text"] = _check_length(ctx, data["text"] + "\n" + data["more"])
    await _classify_and_present(ctx, _draft_of(data))


async def add_no_button(ctx: Context, arg: str) -> None:
    """Back to the draft as it was: nothing typed is added."""
    data = _adding(ctx, arg)
    back = data.get("back") if data.get("back") in (REPORT_CONFIRM, REPORT_PICK) else REPORT_PICK
    ctx.set_step(back, **_draft_of(data))
    await prompt_draft(ctx)


def _candidate_codes(candidates: Sequence[Any]) -> list[str]:
    """Ranked category codes, whether the classifier gives codes or (code, score) pairs."""
    codes: list[str] = []
    for item in candidates:
        code = item if isinstance(item, str) else getattr(item, "category", None) or item[0]
        if code not in codes:
            codes.append(str(code))
    return codes


async def _classify_and_present(ctx: Context, draft: dict[str, Any]) -> None:
    if not draft.get("seen") and await _offer_similar(ctx, draft):
        return
    result = ctx.app.classifier().classify(draft["text"])
    taxonomy = ctx.app.taxonomy
    codes = [c for c in _candidate_codes(result.candidates) if c in taxonomy.categories]
    category = result.category if result.category in taxonomy.categories else None
    if category is not None and category not in codes:
        codes.insert(0, category)
    draft = {**draft, "cat": category, "conf": round(float(result.confidence), 4),
             "cands": codes[:TOP_CANDIDATES]}
    confident = category is not None and draft["conf"] >= ctx.app.settings.classifier_threshold
    ctx.set_step(REPORT_CONFIRM if confident else REPORT_PICK, **_draft_of(draft))
    await prompt_draft(ctx)


async def prompt_draft(ctx: Context) -> None:
    data = ctx.data
    nonce = data["draft"]
    summary = ctx.text("engine.draft_summary", text=data["text"])
    if data.get("att"):
        summary += Markup("\n") + ctx.text("engine.draft_attachments", count=len(data["att"]))
    if ctx.step == REPORT_CONFIRM:
        code = data["cat"]
        body = ctx.text(
            "engine.draft_confident",
            category=_category(ctx, code), group=_group_of(ctx, code),
            confidence=f"{round(data['conf'] * 100)}%",
        )
        buttons = [
            [ctx.button("engine.btn.send", P.build(P.DRAFT_FILE, nonce))],
            [ctx.button("engine.btn.change_category", P.build(P.DRAFT_CHANGE, nonce)),
             ctx.button("engine.btn.add_details", P.build(P.DRAFT_ADD, nonce))],
            [ctx.button("engine.btn.cancel", P.build(P.CANCEL))],
        ]
    else:
        codes = data.get("choices") or data.get("cands") or []
        body = ctx.text("engine.draft_unsure" if not data.get("choices") else "engine.draft_pick")
        picks = [ctx.button("engine.btn.category", P.build_pair(P.DRAFT_PICK, nonce, code),
                            category=_category(ctx, code), group=_group_of(ctx, code))
                 for code in codes]
        buttons = [*rows(picks, 1 if len(picks) <= TOP_CANDIDATES else 2),
                   [ctx.button("engine.btn.not_sure", P.build(P.DRAFT_UNSURE, nonce)),
                    ctx.button("engine.btn.add_details", P.build(P.DRAFT_ADD, nonce))],
                   [ctx.button("engine.btn.cancel", P.build(P.CANCEL))]]
    ctx.say_markup(summary + Markup("\n\n") + body, buttons=buttons)


# --- the same problem, already reported -------------------------------------------------------


async def _offer_similar(ctx: Context, draft: dict[str, Any]) -> bool:
    """Before a report is filed: if open (or recently resolved) tickets describe the same
    problem, show up to three -- reference, category, owner group, deadline and state only,
    never another organisation's words or name -- and let the reporter follow one instead."""
    found = await similarity.search(ctx.uow, ctx.app, draft["text"],
                                    for_reporter=ctx.require_reporter())
    if not found:
        return False
    ctx.set_step(REPORT_SIMILAR, **(_draft_of(draft) | {
        "similar": [[m.ticket.ref, m.score] for m in found]}))
    await prompt_similar(ctx)
    return True


async def prompt_similar(ctx: Context) -> None:
    data = ctx.data
    nonce = data["draft"]
    refs = [ref for ref, _ in data.get("similar", [])]
    found = [t for t in [await ctx.uow.tickets.by_ref(ref) for ref in refs] if t is not None]
    groups = {g.id: g.name(ctx.lang) for g in await ctx.uow.people.groups()}
    lines = [ctx.text("engine.similar_intro", count=len(found))]
    for number, ticket in enumerate(found, 1):
        lines.append(ctx.text(
            "engine.similar_line", n=number, ref=ticket.ref,
            category=_category(ctx, ticket.category), group=groups.get(ticket.group_id, ""),
            deadline=ctx.date(ticket.deadline_at), state=ctx.text(f"state.{ticket.state}")))
    lines.append(ctx.text("engine.similar_question", count=len(found)))
    # Buttons in the order of the numbered lines above, so "2" picks the second ticket.
    buttons = [[ctx.button("engine.btn.follow", P.build_pair(P.SIMILAR_FOLLOW, nonce, t.ref),
                           ref=t.ref)] for t in found]
    buttons.append([ctx.button("engine.btn.file_mine", P.build(P.SIMILAR_FILE, nonce))])
    ctx.say_markup(Markup("\n").join(lines), buttons=buttons)


def _similar_step(ctx: Context, nonce: str) -> dict[str, Any]:
    data = ctx.data
    if ctx.step != REPORT_SIMILAR or data.get("draft") != nonce:
        raise stale()
    return data


async def follow_button(ctx: Context, arg: str) -> None:
    nonce, ref = P.split_pair(arg)
    data = _similar_step(ctx, nonce)
    if ref not in [r for r, _ in data.get("similar", [])]:
        raise stale()
    await _follow(ctx, ref)


async def _follow(ctx: Context, ref: str) -> None:
    person = ctx.require_reporter()
    found = await ctx.uow.tickets.by_ref(ref, for_update=True)
    if found is None:
        raise stale()
    ticket = await kinds.follow(ctx.uow, ctx.app, found, person, ctx.contact)
    ctx.clear_step()
    ctx.say("engine.following", ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))


async def file_mine_button(ctx: Context, arg: str) -> None:
    data = _similar_step(ctx, arg)
    await _classify_and_present(ctx, _draft_of(data) | {"seen": True})


def _category(ctx: Context, code: str) -> str:
    return ctx.app.taxonomy.category(code).name(ctx.lang)


def _group_of(ctx: Context, code: str) -> str:
    return ctx.app.taxonomy.group_of(code).name(ctx.lang)


def _draft_button(ctx: Context, nonce: str) -> dict[str, Any]:
    """Draft buttons are valid only in a drafting step and for the draft they were made for."""
    data = ctx.data
    if ctx.step not in (REPORT_CONFIRM, REPORT_PICK) or data.get("draft") != nonce:
        raise stale()
    return data


async def file_button(ctx: Context, arg: str) -> None:
    data = _draft_button(ctx, arg)
    if ctx.step != REPORT_CONFIRM or not data.get("cat"):
        raise stale()
    await _file(ctx, data, data["cat"])


async def pick_button(ctx: Context, arg: str) -> None:
    nonce, code = P.split_pair(arg)
    data = _draft_button(ctx, nonce)
    allowed = data.get("choices") or data.get("cands") or []
    if code not in allowed or code not in ctx.app.taxonomy.categories:
        raise stale()
    await _file(ctx, data, code)


async def unsure_button(ctx: Context, arg: str) -> None:
    await _file(ctx, _draft_button(ctx, arg), None)


async def change_button(ctx: Context, arg: str) -> None:
    data = _draft_button(ctx, arg)
    ctx.set_step(REPORT_PICK, **(_draft_of(data) | {"choices": ctx.app.taxonomy.codes}))
    await prompt_draft(ctx)


async def _file(ctx: Context, data: dict[str, Any], category: str | None) -> None:
    person = ctx.require_reporter()
    ticket = await tickets.file_ticket(
        ctx.uow, ctx.app, reporter=person, contact=ctx.contact, description=data["text"],
        category=category, confidence=data.get("conf"),
        attachments=[AttachmentIn(**a) for a in data.get("att", [])],
        channel=ctx.event.channel,
    )
    ctx.clear_step()
    text = ctx.text(
        "engine.filed_triage" if ticket.needs_triage else "engine.filed",
        ref=ticket.ref,
        category=_category(ctx, ticket.category),
        group=_group_of(ctx, ticket.category),  # at filing, the category's group (no query)
        deadline=ctx.date(ticket.deadline_at),
    )
    link = _status_link(ctx, ticket)
    if link:
        text += Markup("\n") + ctx.text("engine.status_link", link=link)
    ctx.say_markup(text)


def _status_link(ctx: Context, ticket: Ticket) -> str | None:
    """The public status page, only where the operator has published the dashboard (a link
    to a laptop's listening address would be dead for the reporter)."""
    if not ctx.app.settings.public_base_url:
        return None
    return status_url(ctx.app.settings, ticket.ref, ticket.check_code)


# --- following my tickets ----------------------------------------------------------------------


async def mine(ctx: Context, _arg: str) -> None:
    """The organisation's open (and resolved, awaiting confirmation) tickets, plus originals
    the reporter follows because their own report was linked to them as a duplicate."""
    person = ctx.require_reporter()
    if person.organisation_id is not None:
        found = await ctx.uow.tickets.list(organisation_id=person.organisation_id,
                                           states=_MINE_STATES, limit=MINE_LIMIT)
    else:
        found = await ctx.uow.tickets.list(reporter_id=person.id, states=_MINE_STATES,
                                           limit=MINE_LIMIT)
    followed = await queries.followed_tickets(ctx.uow, person.id, _MINE_STATES, MINE_LIMIT)
    known = {t.id for t in found}
    found += [t for t in followed if t.id not in known]
    if not found:
        ctx.say("engine.mine_empty")
        return
    groups = {g.id: g.name(ctx.lang) for g in await ctx.uow.people.groups()}
    header = ctx.text("engine.mine_header", count=len(found))
    ctx.say_markup(ticket_list(ctx, header, found, groups), buttons=open_buttons(ctx, found))


async def add_command(ctx: Context, arg: str) -> None:
    ctx.require_reporter()
    ref_text, _, text = arg.partition(" ")
    if not ref_text:
        raise InvalidInput("usage", key="engine.usage_add")
    ticket = await visible_ticket(ctx, ref_text)
    if not text.strip() and not ctx.event.attachments:
        ctx.set_step(ANSWER, ref=ticket.ref)
        await prompt_answer(ctx)
        return
    await _add(ctx, ticket, text)


async def answer_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.ANSWER)
    ctx.set_step(ANSWER, ref=ticket.ref)
    await prompt_answer(ctx)


async def prompt_answer(ctx: Context) -> None:
    ctx.say("engine.ask_answer", ref=ctx.data.get("ref", ""), buttons=[_cancel_row(ctx)])


async def handle_answer(ctx: Context, text: str) -> None:
    if not has_words(text) and not ctx.event.attachments:
        raise InvalidInput("no words", key="engine.answer_need_words")
    ticket = await visible_ticket(ctx, ctx.data["ref"])
    await _add(ctx, ticket, text)


async def _add(ctx: Context, ticket: Ticket, text: str) -> None:
    person = ctx.require_reporter()
    was_waiting = ticket.state == TicketState.WAITING_REPORTER.value
    attachments = [AttachmentIn(**a) for a in event_attachments(ctx)]
    await tickets.add_info(ctx.uow, ctx.app, ticket, person, text, attachments)
    ctx.clear_step()
    ctx.say("engine.info_added_resumed" if was_waiting else "engine.info_added",
            ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))


async def confirm_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.CONFIRM)
    await tickets.confirm(ctx.uow, ctx.app, ticket, ctx.require_reporter())
    ctx.set_step(RATE_STARS, ref=ticket.ref)
    ctx.say("engine.confirmed", ref=ticket.ref)
    await prompt_stars(ctx)


def can_rate(ctx: Context, ticket: Ticket) -> bool:
    """The reporter's side may rate (or change the rating) within the configured window."""
    person = ctx.person
    return person is not None and perm.is_reporter_side(person, ticket) and rating_open(
        ticket.state, finished_at(ticket.resolved_at, ticket.closed_at), ctx.now,
        ctx.app.settings.rating_window_days)


async def _rateable(ctx: Context, ref: str) -> Ticket:
    """The ticket behind ``/rate REF`` or a rate button, or why it cannot be rated."""
    ctx.require_reporter()
    ticket = await visible_ticket(ctx, ref)
    if ticket.state not in RATEABLE_STATES:
        raise InvalidInput("not resolved", key="error.rate_not_resolved", ref=ticket.ref)
    if not can_rate(ctx, ticket):
        raise InvalidInput("window passed", key="error.rate_window", ref=ticket.ref,
                           days=ctx.app.settings.rating_window_days)
    return ticket


async def rate_command(ctx: Context, arg: str) -> None:
    """``/rate HL-...`` asks for the stars; ``/rate HL-... 4 comment`` rates at once."""
    parts = arg.split(None, 2)
    if not parts:
        raise InvalidInput("usage", key="engine.usage_rate")
    ticket = await _rateable(ctx, parts[0])
    if len(parts) == 1:
        ctx.set_step(RATE_STARS, ref=ticket.ref)
        await prompt_stars(ctx)
        return
    if parts[1] not in {str(n) for n in STARS}:
        raise InvalidInput("stars", key="error.bad_rating")
    ctx.set_step(RATE_COMMENT, ref=ticket.ref, stars=int(parts[1]))
    if len(parts) == 3:
        await handle_comment(ctx, parts[2])
    else:
        await prompt_comment(ctx)


async def rate_open_button(ctx: Context, arg: str) -> None:
    """The "rate" button of a ticket card (/status): the stars."""
    ticket = await ticket_for_action(ctx, arg, P.RATE_OPEN)
    ctx.set_step(RATE_STARS, ref=ticket.ref)
    await prompt_stars(ctx)


async def prompt_stars(ctx: Context) -> None:
    ref = ctx.data.get("ref", "")
    stars = [ctx.button(f"engine.btn.star_{n}", P.build_pair(P.RATE, ref, n)) for n in STARS]
    ctx.say("engine.ask_stars", ref=ref, days=ctx.app.settings.rating_window_days,
            buttons=[stars, [ctx.button("engine.btn.later", P.build(P.SKIP, "rating"))]])


async def rate_button(ctx: Context, arg: str) -> None:
    ref, raw = P.split_pair(arg)
    if raw not in {str(n) for n in STARS}:
        raise stale()
    try:
        ticket = await visible_ticket(ctx, ref)
    except HotlineError:
        raise stale() from None
    if ctx.person is None or not can_rate(ctx, ticket):
        raise stale()
    ctx.set_step(RATE_COMMENT, ref=ticket.ref, stars=int(raw))
    await prompt_comment(ctx)


async def prompt_comment(ctx: Context) -> None:
    ctx.say("engine.ask_comment", stars=ctx.data.get("stars", ""),
            buttons=[[ctx.button("engine.btn.skip", P.build(P.SKIP, "comment"))]])


async def handle_comment(ctx: Context, text: str) -> None:
    if not has_words(text):
        raise InvalidInput("no words", key="engine.comment_need_words")
    await _save_rating(ctx, text)


async def skip_comment(ctx: Context) -> None:
    if ctx.step != RATE_COMMENT:
        raise stale()
    await _save_rating(ctx, None)


async def later_rating(ctx: Context) -> None:
    """"Later" at the stars: nothing is lost, /rate or /status asks again within the window."""
    if ctx.step != RATE_STARS:
        raise stale()
    ref = ctx.data.get("ref", "")
    ctx.clear_step()
    ctx.say("engine.rate_later", ref=ref, days=ctx.app.settings.rating_window_days)


#: The reporter's skip buttons, handed to the registration area's shared skip handler.
SKIPS = {"comment": skip_comment, "rating": later_rating}


async def after_registration(ctx: Context, data: dict[str, Any]) -> None:
    """The report flow resumes once a new reporter's profile is saved: the problem they
    wrote before registering becomes the draft, or /report asks for one."""
    pending = data.get("pending")
    if pending:
        await start_draft(ctx, pending.get("text", ""), pending.get("att", []))
    elif data.get("then") == "report":
        await report(ctx, "")
    else:
        ctx.say("engine.how_to_report")


async def _save_rating(ctx: Context, comment: str | None) -> None:
    data = ctx.data
    ticket = await visible_ticket(ctx, data["ref"])
    changed = ticket.rating is not None
    await tickets.rate(ctx.uow, ctx.app, ticket, ctx.require_reporter(), int(data["stars"]),
                       comment)
    ctx.clear_step()
    ctx.say("engine.rating_changed" if changed else "engine.rated", ref=ticket.ref,
            stars=data["stars"], days=ctx.app.settings.rating_window_days)


async def leave_rating(ctx: Context) -> None:
    """Moving on without a comment keeps the stars; if the rating is no longer possible
    (a colleague reopened the ticket meanwhile) it is dropped rather than blocking the caller."""
    try:
        async with ctx.uow.savepoint():
            await _save_rating(ctx, None)
    except HotlineError:
        ctx.clear_step()


async def reopen_command(ctx: Context, arg: str) -> None:
    ctx.require_reporter()
    ref_text, _, reason = arg.partition(" ")
    if not ref_text:
        raise InvalidInput("usage", key="engine.usage_reopen")
    ticket = await visible_ticket(ctx, ref_text)
    if not reason.strip():
        ctx.set_step(REOPEN_REASON, ref=ticket.ref)
        await prompt_reopen(ctx)
        return
    await _reopen(ctx, ticket, reason)


async def reopen_button(ctx: Context, arg: str) -> None:
    ticket = await ticket_for_action(ctx, arg, P.REOPEN)
    ctx.set_step(REOPEN_REASON, ref=ticket.ref)
    await prompt_reopen(ctx)


async def prompt_reopen(ctx: Context) -> None:
    ctx.say("engine.ask_reopen_reason", ref=ctx.data.get("ref", ""), buttons=[_cancel_row(ctx)])


async def handle_reopen(ctx: Context, text: str) -> None:
    if not has_words(text):
        raise InvalidInput("no words", key="engine.reason_need_words")
    await _reopen(ctx, await visible_ticket(ctx, ctx.data["ref"]), text)


async def _reopen(ctx: Context, ticket: Ticket, reason: str) -> None:
    await tickets.reopen(ctx.uow, ctx.app, ticket, ctx.require_reporter(), reason)
    ctx.clear_step()
    ctx.say("engine.reopened", ref=ticket.ref, deadline=ctx.date(ticket.deadline_at))


# --- weekly digest subscription -----------------------------------------------------------------

_SWITCH = {"on": True, "bat": True, "bật": True, "off": False, "tat": False, "tắt": False}


async def digest_command(ctx: Context, arg: str) -> None:
    """``/digest on|off``: reporters choose whether the weekly digest of their open tickets
    reaches them (staff and leaders get theirs by role); no argument shows the choice."""
    person = ctx.require_reporter()
    choice = arg.strip().lower()
    if not choice:
        ctx.say("engine.digest_state_on" if person.digest_opt_in else "engine.digest_state_off")
        return
    if choice not in _SWITCH:
        raise InvalidInput("usage", key="engine.usage_digest")
    await people.set_digest_opt_in(ctx.uow, person, _SWITCH[choice])
    ctx.say("engine.digest_on" if person.digest_opt_in else "engine.digest_off")


def register(router: Router) -> None:
    router.idle = idle
    router.command("digest", digest_command, keeps_step=True)
    router.command("report", report)
    router.command("mine", mine)
    router.command("add", add_command)
    router.command("reopen", reopen_command)
    router.command("rate", rate_command)
    router.button(P.DRAFT_FILE, file_button)
    router.button(P.DRAFT_PICK, pick_button)
    router.button(P.DRAFT_UNSURE, unsure_button)
    router.button(P.DRAFT_CHANGE, change_button)
    router.button(P.SIMILAR_FOLLOW, follow_button)
    router.button(P.SIMILAR_FILE, file_mine_button)
    router.button(P.ANSWER, answer_button)
    router.button(P.CONFIRM, confirm_button)
    router.button(P.RATE, rate_button)
    router.button(P.RATE_OPEN, rate_open_button)
    router.button(P.DRAFT_ADD, add_button)
    router.button(P.DRAFT_ADD_YES, add_yes_button)
    router.button(P.DRAFT_ADD_NO, add_no_button)
    router.button(P.REOPEN, reopen_button)
    router.step(REPORT_DESC, Step(more_description, prompt_description))
    router.step(REPORT_SIMILAR, Step.choice(prompt_similar, SIMILAR_VERBS))
    router.step(REPORT_CONFIRM, Step.choice(prompt_draft, DRAFT_VERBS, attach=more_attachments))
    router.step(REPORT_PICK, Step.choice(prompt_draft, DRAFT_VERBS, attach=more_attachments))
    router.step(REPORT_ADD, Step(handle_add, prompt_add, frozenset({P.DRAFT_ADD_NO})))
    router.step(REPORT_ADD_CONFIRM, Step.choice(prompt_add_confirm, ADD_VERBS))
    router.step(RATE_STARS, Step.choice(prompt_stars, frozenset({P.RATE, P.SKIP})))
    router.step(ANSWER, Step(handle_answer, prompt_answer))
    router.step(RATE_COMMENT, Step(handle_comment, prompt_comment, frozenset({P.SKIP, P.RATE}),
                                   leave=leave_rating))
    router.step(REOPEN_REASON, Step(handle_reopen, prompt_reopen))
