"""The similarity index keeps postings only for tickets that may be suggested: a ticket resolved
long ago or linked as a duplicate loses them in the nightly pruning, keeps its document, and gets
them back when it is reopened or when ``--reindex`` runs after the window was widened.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from hotline.deps import App
from hotline.domain.enums import OrgKind, Role
from hotline.services import coordination, similarity, tickets
from storage.models import Person, SimilarityDoc, SimilarityTerm, Ticket
from tests.factories import file, make_reporter, make_staff

FIRST = ("Nghị định hướng dẫn Luật Giao dịch điện tử 2023 đến nay vẫn chưa được ban hành, "
         "Công ty Alpha không biết áp dụng thế nào với hợp đồng điện tử của khách hàng.")
SAME_NO_DIACRITICS = "chua co nghi dinh huong dan luat giao dich dien tu 2023, hop dong dien tu vuong"
OTHER = ("Kho bạc yêu cầu chứng từ giấy khi thanh toán vốn đầu tư công, "
         "hồ sơ điện tử không được chấp nhận.")


async def postings_of(app: App, ticket_id: int) -> int:
    async with app.uow() as uow:
        return (await uow.session.execute(select(func.count()).select_from(SimilarityTerm)
                                          .where(SimilarityTerm.ticket_id == ticket_id))).scalar_one()


async def suggested(app: App, text: str, reporter: Person) -> list[str]:
    async with app.uow() as uow:
        return [m.ticket.ref for m in await similarity.search(uow, app, text, for_reporter=reporter)]


async def resolved_ticket(app: App) -> tuple[Ticket, Person]:
    """Công ty Alpha's report about the missing decree, resolved by the legal group's member."""
    member, _ = await make_staff(app, Role.MEMBER, app.taxonomy.group_of("legal").code)
    alpha, contact = await make_reporter(app, org="Công ty Alpha")
    ticket = await file(app, alpha, contact, FIRST, category="legal")
    async with app.uow() as uow:
        loaded = await uow.tickets.get(ticket.id)
        actor = await uow.people.get(member.id)
        assert loaded is not None and actor is not None and loaded.assignee_id == member.id
        await tickets.acknowledge(uow, app, loaded, actor)
        await tickets.resolve(uow, app, loaded, actor, "Nghị định đã được ban hành.")
        await uow.commit()
    return ticket, alpha


async def test_a_ticket_resolved_long_ago_leaves_the_index_and_returns_when_reopened(app: App) -> None:
    ticket, alpha = await resolved_ticket(app)
    beta, _ = await make_reporter(app, org="Công ty Beta")
    assert await suggested(app, SAME_NO_DIACRITICS, beta) == [ticket.ref]  # resolved recently

    app.clock.advance(timedelta(days=app.settings.similar_resolved_days + 1))  # type: ignore[attr-defined]
    assert await suggested(app, SAME_NO_DIACRITICS, beta) == []
    report = await similarity.prune_postings(app, pause_seconds=0)
    assert (report.tickets, report.reposted) == (1, 0) and report.postings > 10
    assert await postings_of(app, ticket.id) == 0
    async with app.uow() as uow:
        doc = await uow.session.get(SimilarityDoc, ticket.id)
        assert doc is not None and not doc.posted  # the document stays
    again = await similarity.prune_postings(app, pause_seconds=0)
    assert (again.tickets, again.postings) == (0, 0)  # nothing left to prune

    async with app.uow() as uow:
        loaded = await uow.tickets.get(ticket.id)
        reporter = await uow.people.get(alpha.id)
        assert loaded is not None and reporter is not None
        await tickets.reopen(uow, app, loaded, reporter, "Nghị định vẫn chưa áp dụng được.")
        await uow.commit()
    assert await postings_of(app, ticket.id) > 10
    assert await suggested(app, SAME_NO_DIACRITICS, beta) == [ticket.ref]


async def test_a_linked_duplicate_loses_its_postings_and_the_original_keeps_them(app: App) -> None:
    alpha, alpha_contact = await make_reporter(app, org="Công ty Alpha")
    original = await file(app, alpha, alpha_contact, FIRST, category="legal")
    gamma, gamma_contact = await make_reporter(app, org="UBND tỉnh Lào Cai", kind=OrgKind.LOCALITY)
    duplicate = await file(app, gamma, gamma_contact, SAME_NO_DIACRITICS, category="legal")
    unrelated = await file(app, gamma, gamma_contact, OTHER, category="funding")
    coordinator, _ = await make_staff(app, Role.COORDINATOR, None)
    async with app.uow() as uow:
        a, b = await uow.tickets.get(original.id), await uow.tickets.get(duplicate.id)
        actor = await uow.people.get(coordinator.id)
        assert a is not None and b is not None and actor is not None
        await coordination.link_duplicate(uow, app, b, a, actor)
        await uow.commit()

    report = await similarity.prune_postings(app, pause_seconds=0)
    assert report.tickets == 1
    assert await postings_of(app, duplicate.id) == 0
    assert await postings_of(app, original.id) > 10 and await postings_of(app, unrelated.id) > 10
    beta, _ = await make_reporter(app, org="Công ty Beta")
    assert await suggested(app, SAME_NO_DIACRITICS, beta) == [original.ref]


async def test_reindex_gives_postings_back_when_the_window_is_widened(app: App) -> None:
    ticket, _ = await resolved_ticket(app)
    days = app.settings.similar_resolved_days
    app.clock.advance(timedelta(days=days + 10))  # type: ignore[attr-defined]
    assert (await similarity.prune_postings(app, pause_seconds=0)).tickets == 1
    beta, _ = await make_reporter(app, org="Công ty Beta")
    assert await suggested(app, SAME_NO_DIACRITICS, beta) == []

    app.settings = app.settings.model_copy(update={"similar_resolved_days": days + 30})
    async with app.uow() as uow:
        assert await similarity.reindex(uow, app) == 1
    assert await postings_of(app, ticket.id) > 10
    assert await suggested(app, SAME_NO_DIACRITICS, beta) == [ticket.ref]
    async with app.uow() as uow:
        assert await similarity.reindex(uow, app) == 0  # nothing left to do
