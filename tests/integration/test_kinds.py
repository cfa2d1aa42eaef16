"""Kinds of blockers, end to end: the same problem reported twice is found, followed and
counted once.

Scenarios run through the real engine (scripted classifier) on the configured database; the
similarity rule itself is real.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.deps import App
from hotline.digests import build_digest
from hotline.digests.period import week_of
from hotline.digests.render import kinds_headline, telegram_text
from hotline.domain import payloads as P
from hotline.domain.enums import EventKind, OrgKind, Role
from hotline.services import coordination, tickets
from hotline.services.common import get_ticket
from storage.models import OutboxMessage, Ticket, TicketEvent, TicketFollower
from tests.factories import make_reporter, make_staff

FIRST = ("Nghị định hướng dẫn Luật Giao dịch điện tử 2023 đến nay vẫn chưa được ban hành, "
         "Công ty Alpha không biết áp dụng thế nào với hợp đồng điện tử của khách hàng.")
SAME_IN_ENGLISH = ("The decree guiding the 2023 Electronic Transactions Law has still not been "
                   "issued, so we cannot use electronic contracts.")
SAME_NO_DIACRITICS = "chua co nghi dinh huong dan luat giao dich dien tu 2023, hop dong dien tu vuong"
DIFFERENT_LEGAL = ("Chưa có cơ sở pháp lý để thí điểm xe tự hành trên đường công cộng, "
                   "doanh nghiệp không thể thử nghiệm sản phẩm.")


@pytest.fixture
def engine(app: App) -> Engine:
    app._classifier = ScriptedClassifier(default=("legal", 0.9))  # type: ignore[assignment]
    return Engine(app)


async def reporter(app: App, engine: Engine, org: str, lang: str = "vi",
                   kind: OrgKind = OrgKind.ENTERPRISE) -> ScriptedUser:
    _, contact = await make_reporter(app, org=org, language=lang, kind=kind)
    return ScriptedUser(engine, contact.external_id)


async def file_report(user: ScriptedUser, text: str) -> str:
    await user.say(text)
    await user.press(user.payload(P.DRAFT_FILE))
    async with user.engine.app.uow() as uow:
        latest = await uow.session.execute(select(Ticket.ref).order_by(Ticket.id.desc()).limit(1))
        return latest.scalar_one()


async def count_tickets(app: App) -> int:
    async with app.uow() as uow:
        return (await uow.session.execute(select(func.count(Ticket.id)))).scalar_one()


@pytest.mark.parametrize("second_text", [SAME_IN_ENGLISH, SAME_NO_DIACRITICS])
async def test_second_enterprise_follows_the_first_ticket_and_is_counted_once(
        app: App, engine: Engine, second_text: str) -> None:
    member, _ = await make_staff(app, Role.MEMBER, "moj")
    first = await reporter(app, engine, "Công ty Alpha")
    ref = await file_report(first, FIRST)

    second = await reporter(app, engine, "Công ty Beta", lang="en")
    replies = await second.say(second_text)
    shown = second.text
    assert ref in shown and "Ministry of Justice" in shown and "due" in shown
    # Never the other organisation's words or name.
    assert "Alpha" not in shown and "hợp đồng điện tử" not in shown
    assert replies and not any("rfile" in b.payload for b in second.buttons())

    await second.press(second.payload(P.SIMILAR_FOLLOW))
    assert "no new ticket" in second.text and ref in second.text
    assert await count_tickets(app) == 1

    async with app.uow() as uow:
        ticket = await get_ticket(uow, ref, for_update=False)
        followers = (await uow.session.execute(select(TicketFollower).where(
            TicketFollower.ticket_id == ticket.id))).scalars().all()
        followed = (await uow.session.execute(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.kind == EventKind.FOLLOWED.value))).scalars().all()
    assert [f.source for f in followers] == ["intake"]
    assert len(followed) == 1 and followed[0].data["org_kind"] == "enterprise"

    # Their view of the ticket shows its category, never the other organisation's words.
    await second.say(f"/status {ref}")
    assert ref in second.text and "Alpha" not in second.text and "hợp đồng" not in second.text

    # The follower may add their own details, and hears about the kind's progress.
    await second.say(f"/add {ref} We have 40 contracts waiting.")
    assert "40 contracts" not in second.text and ref in second.text
    async with app.uow() as uow:
        ticket = await get_ticket(uow, ref)
        actor = await uow.people.get(member.id)
        assert actor is not None
        await tickets.post_update(uow, app, ticket, actor, "The ministry is drafting the decree.")
        await uow.commit()
    async with app.uow() as uow:
        sent = (await uow.session.execute(select(OutboxMessage.chat_id).where(
            OutboxMessage.payload["text"].as_string().contains("drafting the decree")))).scalars().all()
    assert second.user_id in sent

    # The leaders' digest: one kind received, two affected enterprises.
    digest = await build_digest(app, week_of(app.clock.now() + timedelta(seconds=1)))
    assert digest.kinds.received == 1 and digest.kinds.open == 1
    assert digest.kinds.affected == 2
    assert digest.kinds.affected_count("enterprise") == 2
    text_en = telegram_text(digest, "en", app.taxonomy)
    assert "1 new kinds received" in text_en and "2 reporters affected (2 enterprises)" in text_en
    assert "0 kinds of blockers resolved" in text_en and "1 open" in text_en


async def test_a_different_problem_of_the_same_category_is_not_suggested(
        app: App, engine: Engine) -> None:
    first = await reporter(app, engine, "Công ty Alpha")
    await file_report(first, FIRST)
    other = await reporter(app, engine, "Công ty Gamma")
    await other.say(DIFFERENT_LEGAL)
    assert other.payload(P.DRAFT_FILE)  # straight to the draft: nothing suggested
    assert not [b for b in other.buttons() if b.payload.startswith(P.SIMILAR_FOLLOW)]


async def test_no_file_mine_goes_on_to_file_and_typing_junk_re_asks(app: App, engine: Engine) -> None:
    first = await reporter(app, engine, "Bộ Tài chính", kind=OrgKind.MINISTRY)
    await file_report(first, FIRST)
    second = await reporter(app, engine, "UBND tỉnh Lào Cai", kind=OrgKind.LOCALITY)
    await second.say(SAME_NO_DIACRITICS)
    await second.say("hmm what")  # neither a choice nor a command
    assert "1–2" in second.text  # the shared choice re-ask (issue 18)
    assert await count_tickets(app) == 1
    await second.say("2")  # "No, file mine"
    await second.press(second.payload(P.DRAFT_FILE))
    assert await count_tickets(app) == 2
    async with app.uow() as uow:
        newest = (await uow.session.execute(select(Ticket).order_by(Ticket.id.desc()).limit(1))
                  ).scalar_one()
    assert "hmm what" not in newest.description


async def test_a_reporter_is_not_offered_their_own_organisations_ticket(app: App, engine: Engine) -> None:
    first = await reporter(app, engine, "Công ty Alpha")
    await file_report(first, FIRST)
    await first.say(SAME_NO_DIACRITICS)
    assert first.payload(P.DRAFT_FILE)


async def test_linked_duplicate_counts_its_reporter_as_affected(app: App, engine: Engine) -> None:
    ministry = await reporter(app, engine, "Bộ Tư pháp", kind=OrgKind.MINISTRY)
    ref_a = await file_report(ministry, FIRST)
    locality = await reporter(app, engine, "UBND tỉnh Nghệ An", kind=OrgKind.LOCALITY)
    await locality.say(SAME_NO_DIACRITICS)
    await locality.press(locality.payload(P.SIMILAR_FILE))
    await locality.press(locality.payload(P.DRAFT_FILE))
    coordinator, _ = await make_staff(app, Role.COORDINATOR, None)
    async with app.uow() as uow:
        a = await get_ticket(uow, ref_a)
        b = (await uow.session.execute(select(Ticket).where(Ticket.ref != ref_a))).scalar_one()
        actor = await uow.people.get(coordinator.id)
        assert actor is not None
        await coordination.link_duplicate(uow, app, b, a, actor)
        await uow.commit()
    digest = await build_digest(app, week_of(app.clock.now() + timedelta(seconds=1)))
    assert digest.kinds.received == 1  # two tickets, one kind
    assert digest.kinds.affected == 2
    assert digest.kinds.affected_count("ministry") == 1
    assert digest.kinds.affected_count("locality") == 1
    headline = str(kinds_headline(digest.kinds, "vi", app.settings.timezone))
    assert "còn 1 loại" in headline


async def test_coordinators_see_likely_duplicates_with_scores(app: App, engine: Engine) -> None:
    first = await reporter(app, engine, "Công ty Alpha")
    ref_a = await file_report(first, FIRST)
    # A second organisation that does not want to follow files anyway, unsure of the category.
    app._classifier = ScriptedClassifier(default=("legal", 0.2))  # type: ignore[assignment]
    second = await reporter(app, engine, "Công ty Beta")
    await second.say(SAME_IN_ENGLISH)
    await second.press(second.payload(P.SIMILAR_FILE))
    await second.press(second.payload(P.DRAFT_UNSURE))
    async with app.uow() as uow:
        ref_b = (await uow.session.execute(select(Ticket.ref).where(Ticket.ref != ref_a))).scalar_one()
    _person, contact = await make_staff(app, Role.COORDINATOR, None, language="en")
    coordinator = ScriptedUser(engine, contact.external_id)
    await coordinator.say("/triage")
    assert f"{ref_b} ≈ {ref_a}" in coordinator.text
    await coordinator.say(f"/dup {ref_b}")
    assert ref_a in coordinator.text and "%" in coordinator.text
    assert f"/dup {ref_b} {ref_a}" in coordinator.text
    await coordinator.say(f"/dup {ref_b} {ref_a}")
    digest = await build_digest(app, week_of(app.clock.now() + timedelta(seconds=1)))
    assert digest.kinds.received == 1 and digest.kinds.affected == 2
