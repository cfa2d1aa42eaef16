"""Stray input cannot corrupt a ticket (issue 18): scenarios in Vietnamese and English.

Each scenario is one item of the issue, played through the real engine and database: what a
report is, choice prompts (by number, label or command; anything else re-asks with the valid
range), adding details only when chosen and confirmed, rating that is never lost, and "unknown
X" answers that list what is valid.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import numbered
from bot.console import ConsoleChat
from escalation.sweep import sweep
from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain import payloads as P
from hotline.domain.enums import Role, TicketState
from hotline.domain.reports import EXAMPLE_EN, EXAMPLE_VI
from hotline.i18n import plain, t
from hotline.services import tickets as ticket_service
from hotline.services.common import get_ticket
from storage.models import Conversation, OutboxMessage, Ticket, TicketEvent
from tests.factories import file, make_reporter, make_staff

LANGS = ["vi", "en"]
REPORT = {"vi": "Chưa có nghị định hướng dẫn Luật Dữ liệu",
          "en": "No decree guides the Data Law yet, so our data cannot be shared"}
EXAMPLE = {"vi": EXAMPLE_VI, "en": EXAMPLE_EN}


@pytest.fixture
def engine(app: App) -> Engine:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    return Engine(app, intake=[numbered.intake])


def said(lang: str, key: str, **params: Any) -> str:
    return plain(str(t(key, lang, **params)))


async def reporter(app: App, engine: Engine, lang: str) -> tuple[Any, ScriptedUser]:
    person, contact = await make_reporter(app, language=lang, channel="telegram")
    return person, ScriptedUser(engine, contact.external_id, channel="telegram")


async def state(app: App) -> tuple[list[Any], int, list[Any]]:
    """Tickets, the number of ticket events, and every conversation step with its data."""
    async with app.uow() as uow:
        s = uow.session
        rows = (await s.execute(select(Ticket.ref, Ticket.description, Ticket.state,
                                       Ticket.category, Ticket.rating).order_by(Ticket.id))).all()
        events = int((await s.execute(select(func.count()).select_from(TicketEvent))).scalar_one())
        steps = (await s.execute(select(Conversation.external_id, Conversation.step,
                                        Conversation.data).order_by(Conversation.id))).all()
        return [tuple(r) for r in rows], events, [tuple(r) for r in steps]


async def count_tickets(app: App) -> int:
    async with app.uow() as uow:
        return int((await uow.session.execute(select(func.count()).select_from(Ticket)))
                   .scalar_one())


async def worked_ticket(app: App, lang: str, then: str, channel: str = "telegram"
                      ) -> tuple[Any, Any, str]:
    """A reporter's ticket, acknowledged by its member who then ``then``s it: "resolve" (to
    confirm and rate), "ask" (a question for the reporter) or "extend" (a pending request)."""
    from hotline.services import coordination

    person, contact = await make_reporter(app, language=lang, channel=channel)
    member, _ = await make_staff(app, Role.MEMBER, "mps")
    filed = await file(app, person, contact, REPORT["vi"])
    async with app.uow() as uow:
        ticket = await get_ticket(uow, filed.ref)
        actor = await uow.people.get(ticket.assignee_id or member.id)
        assert actor is not None
        await ticket_service.acknowledge(uow, app, ticket, actor)
        if then == "resolve":
            await ticket_service.resolve(uow, app, ticket, actor, "Đã ban hành hướng dẫn tạm thời")
        elif then == "ask":
            await ticket_service.request_info(uow, app, ticket, actor, "Xin gửi số công văn")
        else:
            await coordination.request_extension(uow, app, ticket, actor,
                                                 ticket.deadline_at + timedelta(days=7),
                                                 "Chờ ý kiến của bộ ngành")
        await uow.commit()
    return person, contact, filed.ref


async def resolved_ticket(app: App, lang: str) -> tuple[Any, Any, str]:
    return await worked_ticket(app, lang, "resolve")


# --- what a report is ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_digits_emoji_and_ok_are_not_reports(app: App, engine: Engine, lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    await rep.say("/help")
    before = await state(app)
    for stray in ("0", "5", "7", "👍👍👍", "ok", "Ok!", "???", "12 34 56"):
        await rep.say(stray)
        assert said(lang, "engine.not_a_report", example=EXAMPLE[lang]) in rep.text
        assert rep.buttons() == []  # no draft, no "send" button
        assert await state(app) == before


@pytest.mark.parametrize("text", [
    "Chưa có nghị định hướng dẫn Luật Dữ liệu",
    "Chua co nghi dinh huong dan Luat Du lieu",
    "No decree guides the Data Law yet",
])
async def test_short_real_reports_become_drafts(app: App, engine: Engine, text: str) -> None:
    _, rep = await reporter(app, engine, "vi")
    await rep.say(text)
    assert text in rep.text  # the whole text is shown in the draft
    assert rep.payload(P.DRAFT_ADD)  # a draft: add details, send or pick, cancel


@pytest.mark.parametrize("lang", LANGS)
async def test_stray_first_message_of_a_newcomer_is_not_kept_for_later(
        app: App, engine: Engine, lang: str) -> None:
    newcomer = ScriptedUser(engine, "new-1", channel="telegram", language=lang,
                            display_name="Lan")
    await newcomer.say("7")
    await newcomer.say("Công ty Cổ phần Dữ liệu Xanh")
    await newcomer.tap("Doanh nghiệp" if lang == "vi" else "Enterprise")
    await newcomer.press("skip:tax")
    await newcomer.press("skip:name")
    assert said(lang, "engine.how_to_report") in newcomer.text  # no draft "7"
    assert await count_tickets(app) == 0


@pytest.mark.parametrize("lang", LANGS)
async def test_report_command_with_a_stray_argument(app: App, engine: Engine, lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    await rep.say("/report 5")
    assert said(lang, "engine.not_a_report_short") in rep.text
    await rep.say("/report")
    await rep.say("👍")  # the description asked for: still not one
    assert said(lang, "engine.not_a_report_short") in rep.text
    assert said(lang, "engine.ask_description") in rep.text  # asked again
    await rep.say(REPORT[lang])
    assert rep.payload(P.DRAFT_ADD)


# --- choice prompts: a choice, a command, or asked again ----------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_the_issue_walkthrough_on_the_console(app: App, engine: Engine, lang: str) -> None:
    """ "0" at "❓ … [1] Answer", then "1"; "5" at a two-button prompt; "7" at the stars."""
    _, contact, ref = await worked_ticket(app, lang, "ask", channel="console")
    out = io.StringIO()
    chat = ConsoleChat(app, contact.external_id, out, engine=engine)
    await chat.deliver()
    assert "[1]" in out.getvalue()  # "❓ … [1] Answer"
    await chat.send("0")
    answer = out.getvalue().rsplit("\n\n", 2)[-2]
    assert said(lang, "error.choose_number", number=0, range="1") in answer
    await chat.send("1")  # still answers the question: the menu was kept
    assert said(lang, "engine.ask_answer", ref=ref) in out.getvalue()
    await chat.send("5")  # "5" as the answer to a question is not information either
    assert said(lang, "engine.answer_need_words") in out.getvalue()
    await chat.send("Công văn số 123/UBND ngày 01/12/2026")
    assert await count_tickets(app) == 1
    async with app.uow() as uow:
        refreshed = await get_ticket(uow, ref, for_update=False)
    assert refreshed.description == REPORT["vi"]
    assert refreshed.state == TicketState.IN_PROGRESS.value


@pytest.mark.parametrize("lang", LANGS)
async def test_draft_prompt_takes_a_choice_by_number_or_label(app: App, engine: Engine,
                                                              lang: str) -> None:
    _, rep = await reporter(app, engine, "vi" if lang == "vi" else "en")
    await rep.say("Dữ liệu dân cư của tỉnh chưa được chia sẻ")  # confident: send / change / add
    before = await state(app)
    for stray in ("0", "5", "14", "👍", "ok", "Chưa có nghị định hướng dẫn Luật Dữ liệu"):
        await rep.say(stray)
        assert said(lang, "error.choose_one", range="1–4") in rep.text
        assert await state(app) == before  # nothing appended, nothing filed
    await rep.say("gửi phản ánh" if lang == "vi" else "send report")  # the label, any case
    assert await count_tickets(app) == 1


@pytest.mark.parametrize("lang", LANGS)
async def test_change_category_list_appends_nothing(app: App, engine: Engine, lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    await rep.say("Dữ liệu dân cư của tỉnh chưa được chia sẻ")
    await rep.press(rep.payload(P.DRAFT_CHANGE))
    count = len(rep.buttons())
    before = await state(app)
    await rep.say(str(count + 1))
    assert said(lang, "error.choose_one", range=f"1–{count}") in rep.text
    await rep.say("abc")
    assert await state(app) == before
    await rep.say("4")
    async with app.uow() as uow:
        filed = (await uow.session.execute(select(Ticket))).scalar_one()
    assert filed.description == "Dữ liệu dân cư của tỉnh chưa được chia sẻ"


@pytest.mark.parametrize("lang", LANGS)
async def test_details_are_added_only_when_chosen_and_confirmed(app: App, engine: Engine,
                                                                lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    await rep.say(REPORT[lang])
    await rep.press(rep.payload(P.DRAFT_ADD))
    await rep.say("7")
    assert said(lang, "engine.details_need_words") in rep.text
    await rep.say("Đã gửi công văn hai lần")
    assert "Đã gửi công văn hai lần" in rep.text  # shown before it is added
    await rep.press(rep.payload(P.DRAFT_ADD_NO))  # "don't add": the draft as it was
    assert "Đã gửi công văn hai lần" not in rep.text
    await rep.press(rep.payload(P.DRAFT_ADD))
    await rep.say("Đã gửi công văn hai lần")
    await rep.say("9")  # the confirmation is a choice prompt too
    assert said(lang, "error.choose_one", range="1–2") in rep.text
    await rep.say("1")
    assert f"{REPORT[lang]}\nĐã gửi công văn hai lần" in rep.text  # the whole text to be filed
    file_verb = P.DRAFT_FILE if any(b.payload.startswith(P.DRAFT_FILE) for b in rep.buttons()) \
        else P.DRAFT_UNSURE
    await rep.press(rep.payload(file_verb))
    async with app.uow() as uow:
        filed = (await uow.session.execute(select(Ticket))).scalar_one()
    assert filed.description == f"{REPORT[lang]}\nĐã gửi công văn hai lần"


@pytest.mark.parametrize("lang", LANGS)
async def test_organisation_and_kind_prompts(app: App, engine: Engine, lang: str) -> None:
    user = ScriptedUser(engine, "org-1", channel="telegram", language=lang)
    await user.say("/start")
    await user.say("3")
    assert said(lang, "error.choose_one", range="1–2") in user.text
    await user.say("English" if lang == "en" else "tiếng việt")
    await user.say("7")
    assert said(lang, "engine.org_need_words") in user.text
    await user.say("Sở Khoa học và Công nghệ")
    await user.say("9")
    assert said(lang, "error.choose_one", range="1–5") in user.text
    await user.say("2")  # ministry, by number
    assert said(lang, "engine.ask_tax") in user.text


# --- staff prompts --------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_member_prompts_refuse_stray_input(app: App, engine: Engine, lang: str) -> None:
    person, contact = await make_reporter(app, language="vi")
    member, member_contact = await make_staff(app, Role.MEMBER, "mps", language=lang,
                                              channel="telegram")
    filed = await file(app, person, contact, REPORT["vi"])
    mem = ScriptedUser(engine, member_contact.external_id, channel="telegram")
    async with app.uow() as uow:
        ticket = await get_ticket(uow, filed.ref)
        if ticket.assignee_id != member.id:
            await ticket_service.claim(uow, app, ticket, await uow.people.get(member.id))
        await uow.commit()
    await mem.press(f"ack:{filed.ref}")
    before = await state(app)
    await mem.press(f"ask:{filed.ref}")
    await mem.say("5")
    assert said(lang, "engine.reason_need_words") in mem.text
    await mem.say("/cancel")
    await mem.press(f"ext:{filed.ref}")
    await mem.say("👍")
    assert said(lang, "engine.bad_date") in mem.text
    assert "dd/mm/yyyy" in mem.text  # asked again with the form of a valid answer
    await mem.say("/cancel")
    assert (await state(app))[:2] == before[:2]


@pytest.mark.parametrize("lang", LANGS)
async def test_coordinator_lists_refuse_stray_input(app: App, engine: Engine, lang: str) -> None:
    person, contact = await make_reporter(app, language="vi")
    _, coord_contact = await make_staff(app, Role.COORDINATOR, language=lang, channel="telegram")
    filed = await file(app, person, contact, REPORT["vi"])
    coord = ScriptedUser(engine, coord_contact.external_id, channel="telegram")
    before = await state(app)
    await coord.press(f"recat:{filed.ref}")
    count = len(coord.buttons())
    await coord.say(str(count + 1))
    assert said(lang, "error.choose_one", range=f"1–{count}") in coord.text
    await coord.say("/cancel")
    await coord.press(f"prio:{filed.ref}")
    await coord.say("urgent")
    assert said(lang, "error.choose_one", range="1–3") in coord.text
    await coord.say("/cancel")
    await coord.press(f"rea:{filed.ref}")
    await coord.say("0")
    assert "1–" in coord.text and said(lang, "engine.choose_group", ref=filed.ref) in coord.text
    await coord.say("/cancel")
    assert (await state(app))[:2] == before[:2]
    await coord.say(f"/recat {filed.ref} foo")
    assert said(lang, "engine.unknown_category", code="foo",
                codes=", ".join(app.taxonomy.codes)) in coord.text


@pytest.mark.parametrize("lang", LANGS)
async def test_extension_approval_on_the_console(app: App, engine: Engine, lang: str) -> None:
    _, coord_contact = await make_staff(app, Role.COORDINATOR, language=lang)
    await worked_ticket(app, "vi", "extend")
    out = io.StringIO()
    chat = ConsoleChat(app, coord_contact.external_id, out, engine=engine)
    await chat.deliver()
    menu = len(await _menu(app, coord_contact.external_id))
    before = await state(app)
    await chat.send(str(menu + 1))
    assert said(lang, "error.choose_number", number=menu + 1, range=f"1–{menu}") in out.getvalue()
    assert await state(app) == before


async def _menu(app: App, chat_id: str) -> list[tuple[str, str]]:
    async with app.uow() as uow:
        return await numbered.remembered_menu(uow, "console", chat_id)


# --- rating is never lost -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_stray_input_at_the_stars_keeps_the_rating(app: App, engine: Engine,
                                                         lang: str) -> None:
    _, contact, ref = await resolved_ticket(app, lang)
    rep = ScriptedUser(engine, contact.external_id, channel="telegram")
    await rep.press(f"cfm:{ref}")
    for stray in ("7", "👍👍👍", "0"):
        await rep.say(stray)
        assert said(lang, "error.choose_one", range="1–6") in rep.text
        assert [b.payload for b in rep.buttons()][:5] == [f"rate:{ref}.{n}" for n in range(1, 6)]
    await rep.say("4")
    await rep.press("skip:comment")
    async with app.uow() as uow:
        assert (await get_ticket(uow, ref, for_update=False)).rating == 4
    assert await count_tickets(app) == 1


@pytest.mark.parametrize("lang", LANGS)
async def test_rate_later_from_status_and_rate_and_change(app: App, engine: Engine, clock:
                                                          ManualClock, lang: str) -> None:
    _, contact, ref = await resolved_ticket(app, lang)
    rep = ScriptedUser(engine, contact.external_id, channel="telegram")
    await rep.press(f"cfm:{ref}")
    await rep.press("skip:rating")
    assert said(lang, "engine.rate_later", ref=ref, days=30) in rep.text
    await rep.say(f"/status {ref}")
    await rep.press(rep.payload(P.RATE_OPEN))  # the card offers "rate"
    await rep.press(f"rate:{ref}.2")
    await rep.say("Chậm")
    clock.advance(timedelta(days=10))
    await rep.say(f"/rate {ref} 5 Đã ổn sau khi bổ sung")
    assert said(lang, "engine.rating_changed", ref=ref, stars=5, days=30) in rep.text
    async with app.uow() as uow:
        ticket = await get_ticket(uow, ref, for_update=False)
    assert (ticket.rating, ticket.rating_comment) == (5, "Đã ổn sau khi bổ sung")
    await rep.say(f"/rate {ref} 9")
    assert said(lang, "error.bad_rating") in rep.text
    clock.advance(timedelta(days=25))  # the window (30 days from resolution) has passed
    await rep.say(f"/rate {ref}")
    assert said(lang, "error.rate_window", ref=ref, days=30) in rep.text
    await rep.say(f"/status {ref}")
    assert not any(b.payload.startswith(P.RATE_OPEN) for b in rep.buttons())


@pytest.mark.parametrize("lang", LANGS)
async def test_one_reminder_when_nobody_rated(app: App, engine: Engine, clock: ManualClock,
                                              lang: str) -> None:
    person, _, ref = await resolved_ticket(app, lang)
    clock.advance(timedelta(days=1))
    assert (await sweep(app, clock.now())).rating_reminded == []  # too early
    clock.advance(timedelta(days=3))
    assert (await sweep(app, clock.now())).rating_reminded == [ref]
    clock.advance(timedelta(days=1))
    assert (await sweep(app, clock.now())).rating_reminded == []  # once only
    async with app.uow() as uow:
        sent = (await uow.session.execute(select(OutboxMessage).where(
            OutboxMessage.person_id == person.id))).scalars().all()
    reminders = [m for m in sent if m.payload["meta"].get("key") == "tickets.rating_reminder"]
    assert len(reminders) == 1
    buttons = [b["payload"] for row in reminders[0].payload["buttons"] for b in row]
    assert buttons == [f"rate:{ref}.{n}" for n in range(1, 6)]
    assert "1 ⭐" in reminders[0].payload["buttons"][0][0]["label"]
    assert said(lang, "tickets.rating_reminder", ref=ref, days=30).split(".")[0] in plain(
        reminders[0].payload["text"])


async def test_rated_tickets_get_no_reminder(app: App, engine: Engine, clock: ManualClock) -> None:
    _, contact, ref = await resolved_ticket(app, "vi")
    rep = ScriptedUser(engine, contact.external_id, channel="telegram")
    await rep.say(f"/rate {ref} 3 Tạm được")
    clock.advance(timedelta(days=5))
    assert (await sweep(app, clock.now())).rating_reminded == []


# --- unknown X lists what is valid ---------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_unknown_language_lists_the_languages(app: App, engine: Engine, lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    await rep.say("/lang fr")
    assert said(lang, "error.bad_language", languages="vi, en") in rep.text


# --- long input is never cut silently ------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_long_console_line_gets_the_telegram_answer(app: App, engine: Engine,
                                                          lang: str) -> None:
    _, contact = await make_reporter(app, language=lang)
    out = io.StringIO()
    chat = ConsoleChat(app, contact.external_id, out, engine=engine)
    lines = iter([("Dữ liệu dân cư chưa được chia sẻ " * 200)[:5_499], None])

    async def read() -> str | None:
        return next(lines)

    await chat.run(read)
    assert said(lang, "error.text_too_long", limit=4000) in out.getvalue()
    assert await count_tickets(app) == 0
