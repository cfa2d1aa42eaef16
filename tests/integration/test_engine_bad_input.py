"""Bad input through the engine: a clear answer in the user's language, and nothing changed.

"Nothing changed" is checked on a snapshot of the business tables (tickets, events, people,
invites, extensions, conversation steps) taken before and after the bad input.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain import payloads as P
from hotline.domain.enums import Role
from hotline.i18n import plain, t
from hotline.messages import InboundEvent
from hotline.services import people
from storage.models import (
    Conversation,
    Extension,
    InboundUpdate,
    Invite,
    OutboxMessage,
    Person,
    Ticket,
    TicketEvent,
)
from tests.factories import make_reporter, make_staff

LANGS = ["vi", "en"]
DATA_TEXT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ"


@pytest.fixture
def engine(app: App) -> Engine:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    return Engine(app)


async def snapshot(app: App) -> dict[str, Any]:
    async with app.uow() as uow:
        s = uow.session

        async def count(model: Any) -> int:
            return int((await s.execute(select(func.count()).select_from(model))).scalar_one())

        tickets = (await s.execute(select(Ticket.ref, Ticket.state, Ticket.assignee_id,
                                          Ticket.deadline_at, Ticket.rating)
                                   .order_by(Ticket.id))).all()
        steps = (await s.execute(select(Conversation.external_id, Conversation.step,
                                        Conversation.data).order_by(Conversation.id))).all()
        roles = (await s.execute(select(Person.id, Person.role, Person.language)
                                 .order_by(Person.id))).all()
        used = (await s.execute(select(Invite.id, Invite.used_at).order_by(Invite.id))).all()
        return {"tickets": tickets, "events": await count(TicketEvent), "steps": steps,
                "people": roles, "invites": used, "extensions": await count(Extension)}


async def reporter(app: App, engine: Engine, lang: str) -> ScriptedUser:
    _, contact = await make_reporter(app, language=lang)
    user = ScriptedUser(engine, contact.external_id)
    await user.say("/help")  # first contact creates the conversation row before any snapshot
    return user


def said(lang: str, key: str, **params: Any) -> str:
    return plain(str(t(key, lang, **params)))


@pytest.mark.parametrize("lang", LANGS)
async def test_empty_message(app: App, engine: Engine, lang: str) -> None:
    rep = await reporter(app, engine, lang)
    before = await snapshot(app)
    for text in ("", "   ", "\n\t"):
        await rep.say(text)
        assert rep.text == said(lang, "error.empty_text")
    assert await snapshot(app) == before


@pytest.mark.parametrize("lang", LANGS)
async def test_huge_message_refused_beyond_the_limit(app: App, engine: Engine,
                                                     lang: str) -> None:
    rep = await reporter(app, engine, lang)
    huge = "Dữ liệu " + "x" * 9_992
    assert len(huge) == 10_000
    before = await snapshot(app)
    await rep.say(huge)
    assert rep.text == said(lang, "error.text_too_long", limit=4000)
    assert await snapshot(app) == before
    # Up to the configured limit it is accepted as it is.
    app.settings.max_message_chars = 10_000
    await rep.say(huge)
    await rep.press(rep.payload(P.DRAFT_FILE))
    async with app.uow() as uow:
        filed = (await uow.session.execute(select(Ticket))).scalar_one()
    assert filed.description == huge


async def test_nul_characters_are_dropped_not_fatal(app: App, engine: Engine) -> None:
    """PostgreSQL refuses NUL in text; a pasted one must not make the report unfileable."""
    rep = await reporter(app, engine, "vi")
    rep.display_name = "Nguyễn\x00 An"
    await rep.send(rep.event(text="Dữ liệu\x00 dân cư chưa được chia sẻ"))
    await rep.press(rep.payload(P.DRAFT_FILE))
    async with app.uow() as uow:
        filed = (await uow.session.execute(select(Ticket))).scalar_one()
    assert filed.description == "Dữ liệu dân cư chưa được chia sẻ"


async def test_too_long_in_total_over_several_messages(app: App, engine: Engine) -> None:
    rep = await reporter(app, engine, "vi")
    await rep.say(DATA_TEXT)
    await rep.press(rep.payload(P.DRAFT_ADD))
    before = await snapshot(app)
    await rep.say("y" * 3_990)
    assert said("vi", "error.text_too_long", limit=4000) in rep.text
    assert await snapshot(app) == before  # the draft is still the first message


@pytest.mark.parametrize("lang", LANGS)
async def test_sticker_and_unsupported_content(app: App, engine: Engine, lang: str) -> None:
    rep = await reporter(app, engine, lang)
    await rep.say(DATA_TEXT)  # in the middle of a draft
    before = await snapshot(app)
    await rep.send(rep.event(kind="unsupported"))
    assert said(lang, "engine.unsupported") in rep.text
    assert rep.payload(P.DRAFT_FILE)  # the pending question is asked again
    assert await snapshot(app) == before


@pytest.mark.parametrize("lang", LANGS)
async def test_unknown_command(app: App, engine: Engine, lang: str) -> None:
    rep = await reporter(app, engine, lang)
    before = await snapshot(app)
    await rep.say("/frobnicate now")
    assert rep.text == said(lang, "engine.unknown_command")
    await rep.say("/")
    assert rep.text == said(lang, "engine.unknown_command")
    assert await snapshot(app) == before


@pytest.mark.parametrize("lang", LANGS)
async def test_malformed_missing_and_foreign_ticket_ids(app: App, engine: Engine,
                                                        lang: str) -> None:
    owner = await reporter(app, engine, lang)
    stranger = await reporter(app, engine, lang)
    await make_staff(app, Role.MEMBER, "mps")
    await owner.say(DATA_TEXT)
    await owner.press(owner.payload(P.DRAFT_FILE))
    before = await snapshot(app)
    for bad in ("/status 12345", "/status DROP TABLE tickets", "/add", "/add xyz hi"):
        await stranger.say(bad)
        assert stranger.text in (said(lang, "error.bad_ticket_ref"), said(lang, "engine.usage_add"))
    await stranger.say("/status")  # no code: their own (empty) list, never someone else's
    assert stranger.text == said(lang, "engine.mine_empty")
    await owner.say("/status")
    assert "HL-2026-000001" in owner.text
    await stranger.say("/status HL-2026-000001")
    foreign = stranger.text
    await stranger.say("/status HL-2026-000777")
    assert foreign == said(lang, "error.ticket_not_found", ref="HL-2026-000001")
    assert stranger.text == said(lang, "error.ticket_not_found", ref="HL-2026-000777")
    for attempt in ("/add HL-2026-000001 xin thêm", "/reopen HL-2026-000001 lý do"):
        await stranger.say(attempt)
        assert stranger.text == foreign
    assert await snapshot(app) == before


@pytest.mark.parametrize("lang", LANGS)
async def test_stale_and_forged_buttons(app: App, engine: Engine, lang: str) -> None:
    rep = await reporter(app, engine, lang)
    member, contact = await make_staff(app, Role.MEMBER, "mps")
    mem = ScriptedUser(engine, contact.external_id)
    await rep.say(DATA_TEXT)
    send = rep.payload(P.DRAFT_FILE)
    await rep.press(send)
    await rep.say("Dữ liệu đất đai sai")  # a new draft: the old send button must not file it
    before = await snapshot(app)
    stale = said(lang, "error.stale_button")
    for payload in (send, "ack:HL-2026-000001", "res:HL-2026-000001", "zzz:1", "not a payload",
                    "ack:HL-2026-000001;drop", "x" * 80, "cfm:HL-2026-000001", "exok:1",
                    "rate:HL-2026-000001.9", "rpick:abc.legal", "kind:enterprise",
                    "lang:fr", "tri:HL-2026-000001", "open:HL-2026-000999", "", "skip:tax"):
        await rep.press(payload)
        assert rep.text.startswith(stale), payload
    assert await snapshot(app) == before
    # A member's button pressed by the member is fine; the same press again is stale.
    await mem.press("ack:HL-2026-000001")
    assert (await snapshot(app))["tickets"][0].state == "in_progress"
    after = await snapshot(app)
    await mem.press("ack:HL-2026-000001")
    assert mem.text == said("vi", "error.stale_button")
    assert await snapshot(app) == after
    assert member.role == "member"


@pytest.mark.parametrize("lang", LANGS)
async def test_member_commands_from_a_reporter(app: App, engine: Engine, lang: str) -> None:
    rep = await reporter(app, engine, lang)
    before = await snapshot(app)
    for command in ("/queue", "/ack HL-2026-000001", "/resolve HL-2026-000001 ok",
                    "/extend HL-2026-000001 31/12/2026 x", "/claim HL-2026-000001"):
        await rep.say(command)
        assert rep.text == said(lang, "engine.staff_only"), command
    for command in ("/triage", "/dup HL-2026-000001 HL-2026-000002",
                    "/priority HL-2026-000001 high", "/reject HL-2026-000001 no"):
        await rep.say(command)
        assert rep.text == said(lang, "engine.coordinators_only"), command
    assert await snapshot(app) == before


@pytest.mark.parametrize("lang", LANGS)
async def test_expired_and_reused_invite_codes(app: App, engine: Engine, clock: ManualClock,
                                               lang: str) -> None:
    async with app.uow() as uow:
        short = await people.create_invite(uow, app, Role.MEMBER, "mps", ttl_hours=1)
        good = await people.create_invite(uow, app, Role.MEMBER, "mps")
        await uow.commit()
    first = ScriptedUser(engine, "first", language=lang)
    second = ScriptedUser(engine, "second", language=lang)
    await first.say("/help")  # creates the conversation row before the snapshot
    await second.say("/help")
    clock.advance(hours=2)
    before = await snapshot(app)
    await first.say(f"/join {short.code}")
    assert first.text == said(lang, "error.invite_expired")
    await first.say("/join NOPE-NOPE")
    assert first.text == said(lang, "error.invite_invalid")
    await first.say("/join")
    assert first.text == said(lang, "error.invite_missing")
    assert await snapshot(app) == before
    await first.say(f"/join {good.code.lower()}")
    assert said(lang, "role.member") in first.text
    before = await snapshot(app)
    await second.say(f"/join {good.code}")
    assert second.text == said(lang, "error.invite_used")
    assert (await snapshot(app))["people"] == before["people"]


@pytest.mark.parametrize("lang", LANGS)
async def test_flooding_reports_hits_the_daily_limit(app: App, engine: Engine,
                                                     lang: str) -> None:
    app.settings.daily_report_limit = 2
    rep = await reporter(app, engine, lang)
    for i in range(2):
        await rep.say(f"{DATA_TEXT} {i}")
        await rep.press(rep.payload(P.DRAFT_FILE))
    before = await snapshot(app)
    await rep.say(f"{DATA_TEXT} 3")
    assert rep.text == said(lang, "error.daily_limit", limit=2)
    assert await snapshot(app) == before


async def test_daily_limit_enforced_at_filing_too(app: App, engine: Engine) -> None:
    """Two drafts open at once cannot slip past the limit: filing checks again."""
    app.settings.daily_report_limit = 1
    rep = await reporter(app, engine, "vi")
    await rep.say(DATA_TEXT)
    send = rep.payload(P.DRAFT_FILE)
    from tests.factories import file

    async with app.uow() as uow:
        contact = await uow.people.contact("console", rep.user_id)
        assert contact is not None and contact.person_id is not None
        person = await uow.people.get(contact.person_id)
    assert person is not None
    await file(app, person, contact, "filed elsewhere meanwhile")
    before = await snapshot(app)
    await rep.press(send)
    assert said("vi", "error.daily_limit", limit=1) in rep.text
    assert (await snapshot(app))["tickets"] == before["tickets"]


async def test_bad_answer_mid_flow_changes_nothing_and_asks_again(app: App,
                                                                  engine: Engine) -> None:
    user = ScriptedUser(engine, "newbie", language="en")
    await user.say("/start")
    await user.press("lang:en")
    await user.say("x" * 300)  # organisation name too long
    assert said("en", "error.name_too_long", limit=200) in user.text
    assert said("en", "engine.ask_org") in user.text
    async with app.uow() as uow:
        step = await uow.session.scalar(select(Conversation.step).where(
            Conversation.channel == "console", Conversation.external_id == "newbie"))
        assert step == "reg_org"


@pytest.mark.parametrize("lang", LANGS)
async def test_duplicate_update_id_is_processed_once(app: App, engine: Engine,
                                                     lang: str) -> None:
    rep = await reporter(app, engine, lang)
    await rep.say(DATA_TEXT)
    press = rep.event(kind="button", payload=rep.payload(P.DRAFT_FILE), update_id="dup-1")
    first = await engine.handle(press)
    assert first and "HL-2026-000001" in first[0].text
    before = await snapshot(app)
    async with app.uow() as uow:
        outbox = (await uow.session.execute(select(func.count()).select_from(OutboxMessage)))
        queued = outbox.scalar_one()
    assert await engine.handle(press) == []
    assert await snapshot(app) == before
    async with app.uow() as uow:
        outbox = (await uow.session.execute(select(func.count()).select_from(OutboxMessage)))
        assert outbox.scalar_one() == queued
        seen = await uow.session.execute(select(func.count()).select_from(InboundUpdate).where(
            InboundUpdate.update_id == "dup-1"))
        assert seen.scalar_one() == 1


async def test_unexpected_failure_rolls_back_and_apologises(
    app: App, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rep = await reporter(app, engine, "en")
    await rep.say(DATA_TEXT)
    before = await snapshot(app)

    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database exploded with secret user text Dữ liệu dân cư")

    press = rep.event(kind="button", payload=rep.payload(P.DRAFT_FILE), update_id="boom-1")
    monkeypatch.setattr("hotline.services.tickets.file_ticket", boom)
    with caplog.at_level(logging.ERROR, logger="hotline.engine"):
        await rep.send(press)
    assert rep.text == said("en", "error.generic")
    assert await snapshot(app) == before
    assert "RuntimeError" in caplog.text
    assert "Dữ liệu" not in caplog.text and "secret" not in caplog.text
    # The apology was recorded with the update id: a redelivery is not processed again.
    monkeypatch.undo()
    assert await engine.handle(press) == []
    assert await snapshot(app) == before
    # And the engine keeps working for the next event.
    assert await engine.handle(InboundEvent(channel="console", update_id="u-x", user_id="z",
                                            chat_id="z", text="/help")) != []


async def test_group_chat_command_with_bot_suffix(app: App, engine: Engine) -> None:
    rep = await reporter(app, engine, "en")
    await rep.say("/help@HotlineBot")
    assert rep.text == said("en", "engine.help_reporter")
