"""Sending digests through the outbox (once per audience and period), the scheduled sends, the
monthly workbook and the CSV export, against a real database."""

from __future__ import annotations

import asyncio
import csv
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import func, select, update

from hotline.clock import ManualClock
from hotline.deps import App
from hotline.digests import build_digest, parse_audience, send_digest, send_scheduled_digests
from hotline.digests import period as P
from hotline.digests.export import load_export, write_csv, write_xlsx
from hotline.domain.enums import OrgKind, Role
from hotline.errors import InvalidInput
from hotline.services import tickets
from hotline.services.common import get_ticket
from storage.models import DigestRun, OutboxMessage, Person, TicketEvent
from tests.conftest import local
from tests.factories import file, make_reporter, make_staff

EVIL = '=HYPERLINK("http://evil","x") <script>alert(1)</script>'


async def _world(app: App, clock: ManualClock) -> dict[str, object]:
    """November 2026: a few tickets through their life; leaders, a lead, opted-in reporters."""
    clock.set(local(2026, 11, 16, 9))
    leader_vi, _ = await make_staff(app, Role.LEADER, name="Lãnh đạo")
    leader_en, _ = await make_staff(app, Role.LEADER, name="Leader", language="en")
    lead, _ = await make_staff(app, Role.LEAD, "mps", name="Trưởng nhóm")
    member, _ = await make_staff(app, Role.MEMBER, "mps", name="Cán bộ")
    ent, ent_contact = await make_reporter(app, name="DN", org=f"Cty {EVIL}", kind=OrgKind.ENTERPRISE)
    loc, loc_contact = await make_reporter(
        app, name="Tỉnh", org="UBND tỉnh", kind=OrgKind.LOCALITY, language="en"
    )
    quiet, _ = await make_reporter(app, name="Im lặng", org="Cty B")
    async with app.uow() as uow:
        await uow.session.execute(
            update(Person).where(Person.id.in_([ent.id, loc.id, quiet.id])).values(digest_opt_in=True)
        )
        await uow.commit()
    refs = []
    for i in range(4):
        refs.append((await file(app, ent, ent_contact, f"{EVIL} {i}")).ref)
        clock.advance(hours=2)
    refs.append((await file(app, loc, loc_contact, "Dữ liệu địa phương")).ref)
    async with app.uow() as uow:
        worker = await uow.people.get(member.id)
        for ref in refs[:2]:
            t = await get_ticket(uow, ref)
            await tickets.acknowledge(uow, app, t, worker)
            await tickets.resolve(uow, app, t, worker, "xong")
        await uow.commit()
    clock.advance(days=1)
    async with app.uow() as uow:
        t = await get_ticket(uow, refs[0])
        await tickets.confirm(uow, app, t, await uow.people.get(ent.id))
        await tickets.rate(uow, app, t, await uow.people.get(ent.id), 4, EVIL)
        await uow.commit()
    return {"leaders": [leader_vi, leader_en], "lead": lead, "reporters": [ent, loc, quiet], "refs": refs}


async def _outbox(app: App) -> list[OutboxMessage]:
    async with app.uow() as uow:
        return list((await uow.session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


def _digest_rows(rows: list[OutboxMessage]) -> list[OutboxMessage]:
    return [r for r in rows if str(r.payload["meta"].get("key", "")).startswith("digest.")]


async def test_leaders_get_text_chart_and_report_once(app: App, clock: ManualClock, tmp_path: Path) -> None:
    world = await _world(app, clock)
    clock.set(local(2026, 11, 23, 8))
    week = P.parse_week("2026-W47")
    result = await send_digest(app, week, parse_audience("leaders"), now=clock.now(), out_dir=tmp_path)
    assert result.status == "sent" and result.people == 2
    rows = _digest_rows(await _outbox(app))
    assert len(rows) == result.messages
    by_person: dict[int, list[OutboxMessage]] = {}
    for row in rows:
        by_person.setdefault(row.person_id, []).append(row)
    assert set(by_person) == {p.id for p in world["leaders"]}  # type: ignore[attr-defined]
    for person_rows in by_person.values():
        texts = [
            r.payload["text"] for r in person_rows if not r.payload["photo"] and not r.payload["document"]
        ]
        photos = [r.payload["photo"] for r in person_rows if r.payload["photo"]]
        documents = [r.payload["document"] for r in person_rows if r.payload["document"]]
        assert texts and len(photos) == 1 and len(documents) == 1
        assert all(len(t) <= 4096 for t in texts)
        assert (await asyncio.to_thread(Path(photos[0]).read_bytes))[:4] == b"\x89PNG"
        page = await asyncio.to_thread(Path(documents[0]).read_text, "utf-8")
        assert "<script" not in page and "2026-W47" in page
    english = by_person[world["leaders"][1].id]  # type: ignore[index]
    assert "Weekly digest 2026-W47" in english[0].payload["text"]
    assert "Bản tin tuần 2026-W47" in by_person[world["leaders"][0].id][0].payload["text"]  # type: ignore[index]

    again = await send_digest(app, week, parse_audience("leaders"), now=clock.now(), out_dir=tmp_path)
    assert again.status == "already_sent" and again.messages == 0
    assert len(_digest_rows(await _outbox(app))) == len(rows)
    async with app.uow() as uow:
        runs = (await uow.session.execute(select(DigestRun))).scalars().all()
        assert [(r.audience, r.period, r.messages) for r in runs] == [("leaders", "2026-W47", len(rows))]


async def test_concurrent_sends_of_one_period_queue_once(
    app: App, clock: ManualClock, tmp_path: Path
) -> None:
    await _world(app, clock)
    week = P.parse_week("2026-W47")
    results = await asyncio.gather(
        *[
            send_digest(app, week, parse_audience("group:mps"), now=clock.now(), out_dir=tmp_path / str(i))
            for i in range(2)
        ]
    )
    assert sorted(r.status for r in results) == ["already_sent", "sent"]
    sent = next(r for r in results if r.status == "sent")
    assert sent.messages > 0
    assert len(_digest_rows(await _outbox(app))) == sent.messages


async def test_group_lead_and_reporters(app: App, clock: ManualClock, tmp_path: Path) -> None:
    world = await _world(app, clock)
    week = P.parse_week("2026-W47")
    lead = await send_digest(app, week, parse_audience("group:mps"), now=clock.now(), out_dir=tmp_path)
    assert lead.status == "sent" and lead.people == 1
    rows = [r for r in _digest_rows(await _outbox(app)) if r.payload["meta"]["audience"] == "group:mps"]
    assert {r.person_id for r in rows} == {world["lead"].id}  # type: ignore[attr-defined]
    text = rows[0].payload["text"]
    assert "Bộ Công an" in text and "HL-2026-000003" in text
    assert any(r.payload["document"] for r in rows) and not any(r.payload["photo"] for r in rows)

    nobody = await send_digest(app, week, parse_audience("group:moj"), now=clock.now(), out_dir=tmp_path)
    assert nobody.status == "sent" and nobody.messages == 0  # no lead: recorded, nothing queued

    reporters = await send_digest(app, week, parse_audience("reporters"), now=clock.now(), out_dir=tmp_path)
    ent, loc, _quiet = world["reporters"]  # type: ignore[misc]
    rows = [r for r in _digest_rows(await _outbox(app)) if r.payload["meta"]["audience"] == "reporters"]
    assert {r.person_id for r in rows} == {ent.id, loc.id}  # the quiet one has no open ticket
    assert reporters.people == 2
    ent_text = "\n".join(r.payload["text"] for r in rows if r.person_id == ent.id)
    loc_text = "\n".join(r.payload["text"] for r in rows if r.person_id == loc.id)
    assert "HL-2026-000001" not in ent_text  # closed
    assert "HL-2026-000002" in ent_text and "please confirm" not in ent_text  # Vietnamese reporter
    assert "đề nghị xác nhận" in ent_text
    assert "HL-2026-000005" in loc_text and "HL-2026-000002" not in loc_text
    assert "&lt;script&gt;" in ent_text and "<script>" not in ent_text

    with pytest.raises(InvalidInput):
        parse_audience("group:")
    with pytest.raises(InvalidInput):
        parse_audience("everyone")


async def test_scheduled_sends_go_out_once_across_restarts(
    app: App, clock: ManualClock, tmp_path: Path
) -> None:
    await _world(app, clock)
    app.settings.output_dir = tmp_path
    monday = local(2026, 11, 23, 8)
    first = await send_scheduled_digests(app, monday, "week")
    assert first > 0
    async with app.uow() as uow:
        audiences = sorted((await uow.session.execute(select(DigestRun.audience))).scalars())
    assert audiences == ["group:mps", "leaders", "reporters"]
    assert await send_scheduled_digests(app, monday + timedelta(hours=1), "week") == 0

    monthly = await send_scheduled_digests(app, local(2026, 12, 10, 8), "month")
    assert monthly > 0
    rows = [r for r in _digest_rows(await _outbox(app)) if r.payload["meta"]["period"] == "2026-11"]
    workbooks = [r.payload["document"] for r in rows if str(r.payload["document"]).endswith(".xlsx")]
    assert len(workbooks) == 2  # each leader, in their language
    assert {r.payload["meta"]["audience"] for r in rows} == {"leaders", "group:mps"}
    assert await send_scheduled_digests(app, local(2026, 12, 10, 9), "month") == 0


async def test_monthly_workbook_and_csv(app: App, clock: ManualClock, tmp_path: Path) -> None:
    await _world(app, clock)
    month = P.parse_month("2026-11")
    digest = await build_digest(app, month)
    data = await load_export(app, month)
    path = write_xlsx(tmp_path / "m.xlsx", data, app, "en", digest)
    book = load_workbook(path)
    assert book.sheetnames == ["Summary", "Tickets", "Events"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row and row[0]}
    assert summary["New"] == digest.flow.new == 5
    assert summary["Resolved"] == 2 and summary["Closed"] == 1
    tickets_rows = list(book["Tickets"].iter_rows(values_only=True))
    header, body = tickets_rows[0], tickets_rows[1:]
    assert header[0] == "Ref" and len(body) == 5
    first = dict(zip(header, body[0], strict=True))
    assert first["Ref"] == "HL-2026-000001" and first["State"] == "Closed" and first["Rating"] == 4
    assert first["Reporter"].startswith("Cty =HYPERLINK")  # text, not a formula
    assert first["Filed"] == local(2026, 11, 16, 9).replace(tzinfo=None)
    reporter_column = get_column_letter(header.index("Reporter") + 1)
    assert book["Tickets"][f"{reporter_column}2"].data_type == "s"
    async with app.uow() as uow:
        n_events = (
            await uow.session.execute(
                select(func.count())
                .select_from(TicketEvent)
                .where(TicketEvent.at >= month.start, TicketEvent.at < month.end)
            )
        ).scalar_one()
    events_rows = list(book["Events"].iter_rows(values_only=True))
    assert len(events_rows) - 1 == n_events
    events_header = events_rows[0]
    rated = dict(zip(events_header, next(r for r in events_rows if r[3] == "Rated"), strict=True))
    assert rated["Note"] == EVIL and rated["Details"] == "4/5"  # words, not {"stars": 4}
    assert all(cell.data_type != "f" for row in book["Events"].iter_rows() for cell in row)

    vi = load_workbook(write_xlsx(tmp_path / "vi.xlsx", data, app, "vi", digest))
    assert vi.sheetnames == ["Tổng hợp", "Phiếu", "Sự kiện"]

    paths = write_csv(tmp_path / "csv", "nov", data, app, "en")
    assert [p.name for p in paths] == ["nov-tickets.csv", "nov-events.csv"]
    with paths[0].open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 6 and rows[0][0] == "Ref"
    with paths[1].open(encoding="utf-8-sig", newline="") as handle:
        events = list(csv.reader(handle))
    assert len(events) - 1 == n_events
    note = next(r for r in events if r[3] == "Rated")[-1]
    assert note.startswith("'=HYPERLINK")  # neutralised for spreadsheet programs
