"""Ticket numbers on PostgreSQL: a sequence per year, so filings never queue on numbering.

What that costs and what it keeps: a filing that rolls back after taking its number leaves a
gap (the sequence never goes back), numbers stay unique and in filing order, and a database
numbered before sequences existed (the year's ``ticket_counters`` row) goes on after its last
number. SQLite numbers inside the filing's transaction, without gaps.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from hotline.deps import App
from hotline.domain.enums import Role
from storage.models import TicketCounter
from tests.factories import file, make_reporter, make_staff


async def test_a_rolled_back_filing_leaves_a_gap_only_on_postgresql(app: App, is_pg: bool) -> None:
    reporter, contact = await make_reporter(app)
    await make_staff(app, Role.MEMBER, "mps")
    first = await file(app, reporter, contact, "a")
    async with app.uow() as uow:  # a filing that took its number, then failed
        await uow.tickets.next_seq(2026)
        await uow.rollback()
    second = await file(app, reporter, contact, "b")
    assert first.ref == "HL-2026-000001"
    assert second.ref == ("HL-2026-000003" if is_pg else "HL-2026-000002")


async def test_numbering_goes_on_after_the_counter_of_an_older_database(app: App, is_pg: bool) -> None:
    reporter, contact = await make_reporter(app)
    await make_staff(app, Role.MEMBER, "mps")
    async with app.uow() as uow:  # numbered up to 41 before this version
        if is_pg:
            await uow.session.execute(text("DROP SEQUENCE IF EXISTS ticket_ref_2026"))
        uow.session.add(TicketCounter(year=2026, last_seq=41))
        await uow.commit()
    assert (await file(app, reporter, contact, "a")).ref == "HL-2026-000042"
    assert (await file(app, reporter, contact, "b")).ref == "HL-2026-000043"


async def test_first_filings_of_a_year_at_once_get_distinct_numbers(app: App, is_pg: bool) -> None:
    """Several workers file the year's first tickets at the same moment: one of them makes the
    year's sequence, and nobody resets it under the others' feet."""
    if not is_pg:
        return  # SQLite: one writer, nothing runs at once
    async with app.uow() as uow:
        await uow.session.execute(text("DROP SEQUENCE IF EXISTS ticket_ref_2031"))
        await uow.commit()

    async def take(i: int) -> int:
        await asyncio.sleep(0.002 * i)  # spread over the time it takes to make the sequence
        async with app.uow() as uow:
            number = await uow.tickets.next_seq(2031)
            await asyncio.sleep(0.05)  # the filing goes on before it commits
            await uow.commit()
            return number

    numbers = await asyncio.gather(*(take(i) for i in range(12)))
    assert sorted(numbers) == list(range(1, 13))
