"""Whole conversations through the engine, in both languages, asserting database and replies.

The classifier is scripted (keywords -> category and confidence) so each conversation knows
which branch it takes; the real classifier is exercised by the console tests.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.domain import payloads as P
from hotline.domain.enums import ExtensionStatus, Role, TicketState
from hotline.i18n import plain, t
from hotline.messages import OutboundMessage
from hotline.services.common import get_ticket
from storage.models import (
    Attachment,
    Extension,
    Organisation,
    OutboxMessage,
    Person,
    Ticket,
    TicketEvent,
    TicketFollower,
)
from tests.conftest import local
from tests.factories import make_reporter, make_staff

LANGS = ["vi", "en"]
DATA_TEXT = "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp"
TEXT = {
    "vi": {
        "filed": "Đã tiếp nhận phản ánh", "deadline": "21/12/2026", "group": "Bộ Công an",
        "category": "Dữ liệu, chia sẻ dữ liệu", "resumed": "Việc xử lý tiếp tục",
        "closed": "đã đóng", "rated": "đã được lưu", "registered": "Đã đăng ký",
        "ask_org": "Tên cơ quan", "unsure": "chưa chắc", "triage": "Bộ phận điều phối",
        "ext": "Đã duyệt gia hạn", "new_deadline": "31/12/2026", "stale": "không còn hiệu lực",
        "reopened": "đã được mở lại", "dup": "trùng", "question": "tạm dừng",
    },
    "en": {
        "filed": "Report filed", "deadline": "21 Dec 2026", "group": "Ministry of Public Security",
        "category": "Data and data sharing", "resumed": "Work continues", "closed": "is closed",
        "rated": "was saved", "registered": "Registered", "ask_org": "name of your organisation",
        "unsure": "not sure", "triage": "coordinator", "ext": "Extension approved",
        "new_deadline": "31 Dec 2026", "stale": "no longer valid", "reopened": "is reopened",
        "dup": "duplicate", "question": "paused",
    },
}


@pytest.fixture
def engine(app: App) -> Engine:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    return Engine(app)


async def reporter(app: App, engine: Engine, lang: str, org: str = "Công ty CP Số Việt"
                   ) -> tuple[Person, ScriptedUser]:
    person, contact = await make_reporter(app, language=lang, org=org)
    return person, ScriptedUser(engine, contact.external_id)


async def staff(app: App, engine: Engine, role: Role, group: str | None, lang: str = "vi"
                ) -> tuple[Person, ScriptedUser]:
    person, contact = await make_staff(app, role, group, language=lang)
    return person, ScriptedUser(engine, contact.external_id)


async def ticket(app: App, ref: str) -> Ticket:
    async with app.uow() as uow:
        return await get_ticket(uow, ref, for_update=False)


async def event_kinds(app: App, ticket_id: int) -> list[str]:
    async with app.uow() as uow:
        return [e.kind for e in await uow.events.for_ticket(ticket_id)]


async def inbox(app: App, person_id: int) -> list[OutboundMessage]:
    """Messages queued for a person (notifications and replies), oldest first."""
    async with app.uow() as uow:
        rows = await uow.session.execute(
            select(OutboxMessage).where(OutboxMessage.person_id == person_id)
            .order_by(OutboxMessage.id))
        return [OutboundMessage.from_json(r.payload) for r in rows.scalars()]


def keys(messages: list[OutboundMessage]) -> list[str | None]:
    return [m.meta.get("key") for m in messages]


async def file_report(user: ScriptedUser, text: str = DATA_TEXT) -> str:
    await user.say(text)
    await user.press(user.payload(P.DRAFT_FILE))
    ref = next(w for w in user.text.replace(":", " ").split() if w.startswith("HL-"))
    return ref


@pytest.mark.parametrize("lang", LANGS)
async def test_report_ask_answer_resolve_confirm_rate(
    app: App, engine: Engine, clock: ManualClock, lang: str
) -> None:
    words = TEXT[lang]
    rep_person, rep = await reporter(app, engine, lang)
    member, mem = await staff(app, engine, Role.MEMBER, "mps", lang)

    # One message: the classification comes back with a send button.
    await rep.say(DATA_TEXT)
    assert words["category"] in rep.text and words["group"] in rep.text and "92%" in rep.text
    await rep.press(rep.payload(P.DRAFT_FILE), message_id="7")
    assert rep.last[0].retire_buttons_of == "7"
    assert words["filed"] in rep.text and "HL-2026-000001" in rep.text
    assert words["deadline"] in rep.text and words["group"] in rep.text
    assert words["category"] in rep.text
    ref = "HL-2026-000001"
    filed = await ticket(app, ref)
    assert filed.state == TicketState.ASSIGNED and filed.assignee_id == member.id
    assert filed.category == "data" and filed.classifier_confidence == pytest.approx(0.92)
    assert filed.deadline_at == local(2026, 12, 21, 9, 0)
    # Replies are in the outbox too (same transaction), addressed to the reporter.
    assert keys(await inbox(app, rep_person.id))[-1] is None
    assert (await inbox(app, rep_person.id))[-1].text == rep.last[0].text
    assigned = (await inbox(app, member.id))[-1]
    assert assigned.meta["key"] == "tickets.assigned_to_you"
    assert [b.payload for row in assigned.buttons for b in row] == [f"ack:{ref}"]

    await mem.press(f"ack:{ref}", message_id="42")
    assert mem.last[0].retire_buttons_of == "42"
    assert (await ticket(app, ref)).state == TicketState.IN_PROGRESS
    assert keys(await inbox(app, rep_person.id))[-1] == "tickets.acknowledged"

    clock.advance(hours=2)
    await mem.press(f"ask:{ref}")
    assert (await ticket(app, ref)).state == TicketState.IN_PROGRESS  # only asked the question
    await mem.say("Cơ sở dữ liệu của tỉnh nào?")
    assert words["question"] in mem.text
    waiting = await ticket(app, ref)
    assert waiting.state == TicketState.WAITING_REPORTER and waiting.paused_since is not None
    asked = (await inbox(app, rep_person.id))[-1]
    assert asked.meta["key"] == "tickets.info_requested"
    answer = [b.payload for row in asked.buttons for b in row]
    assert answer == [f"ans:{ref}"]

    # Three business days later the reporter answers: the deadline moves by exactly that.
    clock.set(local(2026, 12, 10, 11, 0))
    await rep.press(answer[0])
    await rep.say("Cơ sở dữ liệu đất đai Hà Nội")
    assert words["resumed"] in rep.text
    resumed = await ticket(app, ref)
    assert resumed.state == TicketState.IN_PROGRESS and resumed.paused_since is None
    assert resumed.deadline_at == filed.deadline_at + timedelta(days=3)
    assert keys(await inbox(app, member.id))[-1] == "tickets.info_provided"

    await mem.press(f"res:{ref}")
    await mem.say("Đã kết nối qua nền tảng dữ liệu quốc gia")
    assert (await ticket(app, ref)).state == TicketState.RESOLVED
    resolved_msg = (await inbox(app, rep_person.id))[-1]
    assert resolved_msg.meta["key"] == "tickets.resolved"

    await rep.press(f"cfm:{ref}")
    assert words["closed"] in rep.text
    assert [b.payload for b in rep.buttons()] == [*(f"rate:{ref}.{n}" for n in range(1, 6)),
                                                  "skip:rating"]
    await rep.press(f"rate:{ref}.5")
    await rep.say("Nhanh, cảm ơn")
    assert words["rated"] in rep.text
    done = await ticket(app, ref)
    assert done.state == TicketState.CLOSED and done.rating == 5
    assert done.rating_comment == "Nhanh, cảm ơn"
    assert await event_kinds(app, done.id) == [
        "created", "assigned", "acknowledged", "info_requested", "paused", "info_provided",
        "resumed", "resolved", "confirmed", "rated",
    ]
    # Pressing the confirm button again: no longer valid, nothing changes.
    await rep.press(f"cfm:{ref}")
    assert words["stale"] in rep.text
    assert len(await event_kinds(app, done.id)) == 10


@pytest.mark.parametrize("lang", LANGS)
async def test_extension_requested_and_approved(app: App, engine: Engine, lang: str) -> None:
    words = TEXT[lang]
    _, rep = await reporter(app, engine, lang)
    member, mem = await staff(app, engine, Role.MEMBER, "mps", lang)
    coordinator, coord = await staff(app, engine, Role.COORDINATOR, None, lang)
    ref = await file_report(rep)
    await mem.say(f"/ack {ref}")
    await mem.say(f"/ticket {ref}")
    await mem.press(mem.payload(P.EXTEND))
    await mem.say("32/13/2026")  # not a date: asked again, nothing stored
    assert "dd/mm/yyyy" in mem.text
    await mem.say("08/12/2026")  # before the current deadline
    assert words["deadline"] in mem.text
    await mem.say("31/12/2026")
    await mem.say("Chờ Bộ Tư pháp cho ý kiến")
    async with app.uow() as uow:
        ext = (await uow.session.execute(select(Extension))).scalar_one()
    assert ext.status == ExtensionStatus.PENDING
    asked = (await inbox(app, coordinator.id))[-1]
    assert asked.meta["key"] == "tickets.extension_requested"
    approve = next(b.payload for row in asked.buttons for b in row if b.payload.startswith("exok"))

    await coord.press(approve)
    assert words["ext"] in coord.text and words["new_deadline"] in coord.text
    extended = await ticket(app, ref)
    assert extended.deadline_at == local(2026, 12, 31, 17, 0) and extended.extension_count == 1
    assert keys(await inbox(app, member.id))[-1] == "tickets.extension_approved"
    before = await event_kinds(app, extended.id)
    # A second press (or a second coordinator) finds it decided: stale, nothing changes.
    await coord.press(approve)
    assert words["stale"] in coord.text
    assert await event_kinds(app, extended.id) == before
    # A member cannot decide extensions, even with a forged payload.
    await mem.press(approve)
    assert words["stale"] in mem.text

    # A second request, typed in one line this time, is refused: the deadline stays.
    await mem.say(f"/extend {ref} 15/01/2027 Vẫn chờ ý kiến")
    asked = (await inbox(app, coordinator.id))[-1]
    refuse = next(b.payload for row in asked.buttons for b in row if b.payload.startswith("exno"))
    await coord.press(refuse)
    refused = await ticket(app, ref)
    assert refused.deadline_at == extended.deadline_at and refused.extension_requests == 2
    assert refused.extension_count == 1
    assert keys(await inbox(app, member.id))[-1] == "tickets.extension_refused"
    async with app.uow() as uow:
        statuses = (await uow.session.execute(select(Extension.status).order_by(
            Extension.id))).scalars().all()
    assert list(statuses) == [ExtensionStatus.APPROVED, ExtensionStatus.REFUSED]


@pytest.mark.parametrize("lang", LANGS)
async def test_duplicate_linked_and_followed(app: App, engine: Engine, lang: str) -> None:
    words = TEXT[lang]
    _, first = await reporter(app, engine, lang, org="Sở TT&TT Hà Nội")
    second_person, second = await reporter(app, engine, lang, org="Công ty B")
    _, third = await reporter(app, engine, lang, org="Công ty C")
    await staff(app, engine, Role.MEMBER, "mps")
    _, coord = await staff(app, engine, Role.COORDINATOR, None, lang)
    original = await file_report(first)
    duplicate = await file_report(second, "Dữ liệu đất đai không được chia sẻ")

    await coord.say(f"/dup {duplicate} {original}")
    assert words["dup"] in coord.text
    dup = await ticket(app, duplicate)
    orig = await ticket(app, original)
    assert dup.state == TicketState.REJECTED and dup.duplicate_of_id == orig.id
    assert "duplicate_linked" in await event_kinds(app, dup.id)
    async with app.uow() as uow:
        followers = (await uow.session.execute(select(TicketFollower.person_id).where(
            TicketFollower.ticket_id == orig.id))).scalars().all()
    assert list(followers) == [second_person.id]
    assert keys(await inbox(app, second_person.id))[-1] == "tickets.duplicate"
    # The follower may look at the original; an unrelated organisation may not.
    await second.say(f"/status {original}")
    assert original in second.text and not second.buttons()
    await second.say("/mine")  # the original is listed; the rejected duplicate is not
    assert original in second.text and duplicate not in second.text
    await third.say(f"/status {original}")
    hidden = third.text
    await third.say("/status HL-2026-000999")
    assert hidden.replace(original, "HL-2026-000999") == third.text


@pytest.mark.parametrize("lang", LANGS)
async def test_reopen_after_resolution_and_after_closing(
    app: App, engine: Engine, clock: ManualClock, lang: str
) -> None:
    words = TEXT[lang]
    _, rep = await reporter(app, engine, lang)
    member, mem = await staff(app, engine, Role.MEMBER, "mps", lang)
    ref = await file_report(rep)
    await mem.say(f"/ack {ref}")
    await mem.say(f"/resolve {ref} Đã xử lý xong")
    assert (await ticket(app, ref)).state == TicketState.RESOLVED
    clock.advance(days=1)
    await rep.press(f"rop:{ref}")
    await rep.say("Vẫn chưa truy cập được dữ liệu")
    assert words["reopened"] in rep.text
    reopened = await ticket(app, ref)
    assert reopened.state == TicketState.REOPENED and reopened.reopen_count == 1
    assert reopened.cycle == 2
    assert keys(await inbox(app, member.id))[-1] == "tickets.reopened"

    await mem.say(f"/ack {ref}")
    await mem.say(f"/resolve {ref} Đã cấp quyền truy cập")
    await rep.press(f"cfm:{ref}")
    clock.advance(days=1)
    await rep.say(f"/reopen {ref} Quyền truy cập lại bị thu hồi")
    assert words["reopened"] in rep.text
    assert (await ticket(app, ref)).reopen_count == 2


@pytest.mark.parametrize("lang", LANGS)
async def test_low_confidence_not_sure_goes_to_triage(app: App, engine: Engine,
                                                      lang: str) -> None:
    words = TEXT[lang]
    _, rep = await reporter(app, engine, lang)
    coordinator, coord = await staff(app, engine, Role.COORDINATOR, None, lang)
    member, _ = await staff(app, engine, Role.MEMBER, "mps")
    await rep.say("Xin hỏi lịch làm việc tuần sau")
    assert words["unsure"] in rep.text
    picks = [b.payload for b in rep.buttons() if b.payload.startswith(P.DRAFT_PICK)]
    assert [p.rsplit(".", 1)[1] for p in picks] == ["procedure", "legal", "funding"]
    await rep.press(rep.payload(P.DRAFT_UNSURE))
    assert words["triage"] in rep.text
    ref = "HL-2026-000001"
    filed = await ticket(app, ref)
    assert filed.needs_triage and filed.category == "other" and filed.state == TicketState.NEW
    note = (await inbox(app, coordinator.id))[-1]
    assert note.meta["key"] == "tickets.triage_needed"

    await coord.say("/triage")
    assert ref in coord.text
    await coord.press(f"tri:{ref}")
    assert f"{P.RECATEGORISE_TO}:{ref}.data" in [b.payload for b in coord.buttons()]
    await coord.press(f"{P.RECATEGORISE_TO}:{ref}.data")
    routed = await ticket(app, ref)
    assert not routed.needs_triage and routed.category == "data"
    assert routed.assignee_id == member.id and routed.state == TicketState.ASSIGNED
    async with app.uow() as uow:
        labels = await uow.session.execute(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == routed.id, TicketEvent.kind == "recategorised"))
        assert labels.scalar_one() == 1


@pytest.mark.parametrize("lang", LANGS)
async def test_pick_from_top_three_and_change_category(app: App, engine: Engine,
                                                       lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    await rep.say("Thủ tục cấp phép còn đòi bản giấy")
    await rep.press(next(b.payload for b in rep.buttons() if b.payload.endswith(".legal")))
    assert (await ticket(app, "HL-2026-000001")).category == "legal"
    assert not (await ticket(app, "HL-2026-000001")).needs_triage

    # Confident, but the reporter knows better: change category shows all eleven.
    await rep.say(DATA_TEXT)
    await rep.press(rep.payload(P.DRAFT_CHANGE))
    picks = [b.payload for b in rep.buttons() if b.payload.startswith(P.DRAFT_PICK)]
    assert len(picks) == 11
    await rep.press(next(p for p in picks if p.endswith(".funding")))
    assert (await ticket(app, "HL-2026-000002")).category == "funding"


@pytest.mark.parametrize("lang", LANGS)
async def test_registration_then_report_in_one_go(app: App, engine: Engine, lang: str) -> None:
    """A newcomer writes the problem first; after the profile the report continues."""
    words = TEXT[lang]
    newcomer = ScriptedUser(engine, "new-1", language=lang, display_name="Trần Thị Bình")
    await newcomer.say(DATA_TEXT)
    assert words["ask_org"] in newcomer.text
    await newcomer.say("Sở Khoa học và Công nghệ Đà Nẵng")
    await newcomer.press(f"{P.ORG_KIND}:locality")
    await newcomer.say("12345")  # bad tax code: asked again
    assert "10" in newcomer.text and newcomer.payload(P.SKIP) == "skip:tax"
    await newcomer.say("0401234567")
    await newcomer.press(newcomer.payload(P.SKIP))  # use the display name
    assert words["registered"] in newcomer.text and words["category"] in newcomer.text
    await newcomer.press(newcomer.payload(P.DRAFT_FILE))
    assert words["filed"] in newcomer.text
    async with app.uow() as uow:
        person = (await uow.session.execute(select(Person))).scalars().one()
        org = await uow.session.get(Organisation, person.organisation_id)
    assert person.display_name == "Trần Thị Bình" and person.language == lang
    assert org is not None and org.kind == "locality" and org.tax_code == "0401234567"
    assert (await ticket(app, "HL-2026-000001")).reporter_id == person.id


async def test_start_language_choice_and_lang_switch_mid_flow(app: App, engine: Engine) -> None:
    user = ScriptedUser(engine, "new-2")
    await user.say("/start")
    assert [b.payload for b in user.buttons()] == ["lang:vi", "lang:en"]
    await user.press("lang:en")
    assert "name of your organisation" in user.text
    await user.say("/lang vi")  # keeps the flow and asks again, now in Vietnamese
    assert "Tên cơ quan" in user.text
    await user.say("/help")  # so does /help
    assert "/start" in user.text and "Tên cơ quan" in user.text
    await user.say("Công ty TNHH An Phát")
    await user.say("doanh nghiệp")  # typed instead of pressed
    await user.press("skip:tax")
    await user.say("Lê Văn Cường")
    async with app.uow() as uow:
        person = (await uow.session.execute(select(Person))).scalars().one()
    assert person.language == "vi" and person.display_name == "Lê Văn Cường"
    await user.say("/start")
    assert "Lê Văn Cường" in user.text


async def test_attachments_and_several_messages_make_one_report(app: App,
                                                                engine: Engine) -> None:
    from hotline.messages import Attachment as InAttachment

    _, rep = await reporter(app, engine, "vi")
    await rep.say("/report")
    await rep.say("", [InAttachment("photo", "file-1")])
    await rep.say("Dữ liệu hộ tịch không khớp ở phường", [InAttachment("document", "file-2",
                                                                        "a.pdf")])
    # Typed at the draft's question, more text is refused; "add details" adds it once confirmed.
    await rep.say("Đã gửi công văn hai lần")
    assert plain(str(t("error.choose_one", "vi", range="1–4"))) in rep.text
    await rep.press(rep.payload(P.DRAFT_ADD))
    await rep.say("Đã gửi công văn hai lần")
    await rep.press(rep.payload(P.DRAFT_ADD_YES))
    assert "Đã gửi công văn hai lần" in rep.text  # the summary shows the whole text
    await rep.press(rep.payload(P.DRAFT_FILE))
    filed = await ticket(app, "HL-2026-000001")
    assert filed.description == "Dữ liệu hộ tịch không khớp ở phường\nĐã gửi công văn hai lần"
    async with app.uow() as uow:
        refs = (await uow.session.execute(select(Attachment.file_ref).where(
            Attachment.ticket_id == filed.id).order_by(Attachment.id))).scalars().all()
    assert list(refs) == ["file-1", "file-2"]


@pytest.mark.parametrize("lang", LANGS)
async def test_mine_and_status(app: App, engine: Engine, clock: ManualClock, lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    _, colleague = await reporter(app, engine, lang)  # another organisation
    ref = await file_report(rep)
    await rep.say("/mine")
    assert ref in rep.text and "🟢" in rep.text
    assert rep.payload(P.OPEN) == f"open:{ref}"
    await rep.press(f"open:{ref}")
    assert ref in rep.text and TEXT[lang]["deadline"] in rep.text
    clock.set(local(2026, 12, 22, 9, 0))  # past the deadline
    await rep.say(f"/status {ref.lower()}")
    assert "🔴" in rep.text
    await colleague.say("/mine")
    assert ref not in colleague.text


async def test_staff_queue_claim_reassign_priority_reject(app: App, engine: Engine) -> None:
    async with app.uow() as uow:
        group = await uow.people.group("mps")
        assert group is not None
        group.claim_from_queue = True
        await uow.commit()
    _, rep = await reporter(app, engine, "vi")
    m1, mem1 = await staff(app, engine, Role.MEMBER, "mps")
    m2, _ = await staff(app, engine, Role.MEMBER, "mps")
    _, lead_user = await staff(app, engine, Role.LEAD, "mps")
    other, _ = await staff(app, engine, Role.MEMBER, "moj")
    _, coord = await staff(app, engine, Role.COORDINATOR, None)
    ref = await file_report(rep)
    ref2 = await file_report(rep, "Dữ liệu doanh nghiệp sai lệch")
    assert (await ticket(app, ref)).assignee_id is None

    await mem1.say("/queue")
    assert ref in mem1.text and ref2 in mem1.text
    await mem1.press(f"claim:{ref}")
    assert (await ticket(app, ref)).assignee_id == m1.id
    await mem1.press(f"claim:{ref}")  # already taken: stale
    assert "không còn hiệu lực" in mem1.text
    await mem1.say(f"/ticket {ref}")
    verbs = [b.payload.split(":")[0] for b in mem1.buttons()]
    assert verbs == [P.ACK, P.UPDATE, P.EXTEND]
    await mem1.press(f"{P.RECATEGORISE}:{ref}")  # not a member's power
    assert "không còn hiệu lực" in mem1.text

    # The lead reassigns within the group; a member of another group is not offered.
    await lead_user.press(f"{P.REASSIGN}:{ref}")
    offered = [b.payload for b in lead_user.buttons()]
    assert f"{P.REASSIGN_TO}:{ref}.{m2.id}" in offered
    assert f"{P.REASSIGN_TO}:{ref}.{other.id}" not in offered
    await lead_user.press(f"{P.REASSIGN_TO}:{ref}.{other.id}")  # forged
    assert "không còn hiệu lực" in lead_user.text
    await lead_user.press(f"{P.REASSIGN_TO}:{ref}.{m2.id}")
    assert (await ticket(app, ref)).assignee_id == m2.id

    # The coordinator moves it across groups.
    await coord.press(f"{P.REASSIGN}:{ref}")
    await coord.press(f"{P.REASSIGN_GROUP}:{ref}.moj")
    await coord.press(coord.payload(P.REASSIGN_TO))
    moved = await ticket(app, ref)
    assert moved.assignee_id == other.id and moved.group_id == other.group_id

    await coord.say(f"/priority {ref} critical")
    critical = await ticket(app, ref)
    assert critical.priority == "critical" and critical.sla_days == 3
    await coord.press(f"{P.REJECT}:{ref2}")
    await coord.say("Ngoài phạm vi của Tổ công tác")
    assert (await ticket(app, ref2)).state == TicketState.REJECTED


async def test_status_link_only_where_the_dashboard_is_published(app: App,
                                                                 engine: Engine) -> None:
    pytest.importorskip("hotline.web")
    _, rep = await reporter(app, engine, "en")
    await file_report(rep)
    assert "/status/" not in rep.text  # no public base URL: no dead link
    app.settings.public_base_url = "https://hotline.example.gov.vn/"
    await file_report(rep, "Data of the land registry is not shared")
    filed = await ticket(app, "HL-2026-000002")
    assert f"https://hotline.example.gov.vn/status/HL-2026-000002/{filed.check_code}" in rep.text


@pytest.mark.parametrize("lang", LANGS)
async def test_web_sign_in_link(app: App, engine: Engine, lang: str) -> None:
    pytest.importorskip("hotline.web")
    app.settings.public_base_url = "https://hotline.example.gov.vn"
    _, mem = await staff(app, engine, Role.MEMBER, "mps", lang)
    await mem.say("/web")
    assert "https://hotline.example.gov.vn/signin/" in mem.text
    assert str(app.settings.web_signin_ttl_minutes) in mem.text
    stranger = ScriptedUser(engine, "nobody", language=lang)
    await stranger.say("/web")
    assert "/signin/" not in stranger.text and "/start" in stranger.text


async def test_real_classifier_one_message_one_tap(app: App, request: pytest.FixtureRequest
                                                   ) -> None:
    """The trained classifier behind the same flow: text without diacritics, filed in one tap."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    if cache is not None:  # the model cache is keyed by its training data: never stale
        app.settings.classifier_cache_dir = Path(cache.mkdir("hotline-classifier"))
    engine = Engine(app)  # no scripted classifier: app.classifier() trains/loads the real one
    _, rep = await reporter(app, engine, "vi")
    await rep.say("du lieu dan cu cua tinh chua duoc chia se cho doanh nghiep")
    shown = [b.payload for b in rep.buttons()]
    if any(p.startswith(P.DRAFT_FILE) for p in shown):
        assert "Dữ liệu, chia sẻ dữ liệu" in rep.text
        await rep.press(rep.payload(P.DRAFT_FILE))
    else:  # an unsure model offers its top three; the first is its best guess
        await rep.press(next(p for p in shown if p.startswith(P.DRAFT_PICK)))
    filed = await ticket(app, "HL-2026-000001")
    assert filed.category == "data" and filed.classifier_confidence is not None


@pytest.mark.parametrize("lang", LANGS)
async def test_digest_subscription_from_the_chat(app: App, engine: Engine, clock: ManualClock,
                                                 tmp_path: Path, lang: str) -> None:
    """/digest on|off is the reporter's only way into the opted-in reporters' digest."""
    from hotline.digests import parse_audience, send_digest
    from hotline.digests import period as digest_period

    person, rep = await reporter(app, engine, lang)
    _, member = await staff(app, engine, Role.MEMBER, "mps", lang)
    ref = await file_report(rep)
    words = {"vi": ("chưa nhận", "sẽ nhận", "thôi nhận", "Cú pháp: /digest"),
             "en": ("do not receive", "will receive", "no longer", "Usage: /digest")}[lang]

    async def opted_in() -> bool:
        async with app.uow() as uow:
            found = await uow.people.get(person.id)
            assert found is not None
            return found.digest_opt_in

    await rep.say("/digest")
    assert words[0] in rep.text and not await opted_in()
    for bad in ("/digest maybe", "/digest " + "x" * 300):
        await rep.say(bad)
        assert words[3] in rep.text and not await opted_in()
    await member.say("/digest on")  # staff get digests by role, not by opting in
    assert "/digest" not in member.text
    await rep.say("/digest ON")
    assert words[1] in rep.text and await opted_in()

    clock.advance(timedelta(days=7))
    week = digest_period.last_complete_week(clock.now(), app.settings.timezone)
    sent = await send_digest(app, week, parse_audience("reporters"), now=clock.now(),
                             out_dir=tmp_path)
    assert sent.people == 1
    assert ref in (await inbox(app, person.id))[-1].text

    await rep.say("/digest off")
    assert words[2] in rep.text and not await opted_in()


@pytest.mark.parametrize("lang", LANGS)
async def test_status_without_a_code_lists_the_callers_own_tickets(app: App, engine: Engine,
                                                                   lang: str) -> None:
    _, rep = await reporter(app, engine, lang)
    _, member = await staff(app, engine, Role.MEMBER, "mps", lang)
    ref = await file_report(rep)
    await rep.say("/status")
    assert ref in rep.text and rep.buttons()  # the /mine list, each ticket a button
    await rep.press(rep.button(ref).payload)
    assert ref in rep.text
    await member.say("/status")  # staff: their /queue (the group's unassigned pool here)
    assert ref in member.text
    _, leader = await staff(app, engine, Role.LEADER, None, lang)
    for other in (leader, ScriptedUser(engine, "status-newcomer")):
        await other.say("/status")
        assert "/status HL-2026-000123" in other.text
