"""Exports are for their readers: a leader's secretary opens the monthly workbook in Excel.

Read back with openpyxl: every state, event, level, group and category is a word in the
reader's language; instants are real date cells in local time (``dd/mm/yyyy hh:mm``); an
event's details are columns, never JSON; the report text is whole; the first-response share
is a percent cell; each table has a frozen header, widths and a filter. Programs get the
same rows as JSON, with codes and UTC instants.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

from openpyxl import load_workbook

from escalation.sweep import sweep
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.digests import build_digest
from hotline.digests import period as P
from hotline.digests.export import load_export, write_csv, write_json, write_xlsx
from hotline.domain.enums import Priority, TicketState
from hotline.i18n import plain, t
from hotline.services import tickets
from hotline.services.common import get_ticket
from tests.conftest import local
from tests.factories import file, make_reporter
from tests.integration.test_digest_send import _world

LONG = ("Doanh nghiệp chúng tôi đề nghị hướng dẫn việc kết nối cơ sở dữ liệu quốc gia về dân cư "
        "với hệ thống quản lý khách hàng; " * 4).strip()
CODES = {s.value for s in TicketState} | {"escalated", "created", "l1", "l2", "reminder",
                                          "sla_fraction", "first_response", "deadline"}


async def _month(app: App, clock: ManualClock) -> P.Period:
    """November with a long report, a question to the reporter, and the ladder's steps."""
    world = await _world(app, clock)
    reporter, contact = await make_reporter(app, name="Dài", org="Cty Dài")
    long_ticket = await file(app, reporter, contact, LONG, priority=Priority.CRITICAL)
    assert long_ticket.title != LONG  # the title is cut; the export must not be
    async with app.uow() as uow:
        t = await get_ticket(uow, world["refs"][2])  # type: ignore[index]
        worker = await uow.people.get(t.assignee_id)
        await tickets.acknowledge(uow, app, t, worker)
        await tickets.request_info(uow, app, t, worker, "Đề nghị gửi thêm hồ sơ")
        await uow.commit()
    for day in (18, 20, 25, 27, 30):  # the sweep runs; by Monday 30th deadlines have passed
        clock.set(local(2026, 11, day, 10))
        await sweep(app, clock.now())
    return P.parse_month("2026-11")


async def test_workbook_reads_as_words_dates_and_percents(
    app: App, clock: ManualClock, tmp_path: Path
) -> None:
    month = await _month(app, clock)
    clock.set(local(2026, 12, 3, 14, 35))
    digest = await build_digest(app, month)
    data = await load_export(app, month)
    book = load_workbook(write_xlsx(tmp_path / "vi.xlsx", data, app, "vi", digest))
    assert book.sheetnames == ["Tổng hợp", "Phiếu", "Sự kiện"]

    events = book["Sự kiện"]
    header = [c.value for c in events[1]]
    assert header == ["Thời điểm", "Mã phiếu", "Nhóm xử lý", "Sự kiện", "Người thực hiện", "Từ",
                      "Sang", "Hạn xử lý", "Cấp nhắc việc", "Lý do", "Số người được báo",
                      "Chi tiết", "Ghi chú"]
    rows = [dict(zip(header, (c for c in row), strict=True)) for row in events.iter_rows(min_row=2)]
    assert rows
    for row in rows:
        at = row["Thời điểm"]
        assert isinstance(at.value, datetime) and at.number_format == "dd/mm/yyyy hh:mm"
        assert month.first_day <= at.value.date() <= month.last_day
        for cell in row.values():
            text = str(cell.value or "")
            assert not text.startswith("{") and '"due_at"' not in text, text
            assert text not in CODES, (cell.coordinate, text)
    kinds = {r["Sự kiện"].value for r in rows}
    assert {"Tiếp nhận", "Nhắc việc, báo cáo vượt cấp", "Đề nghị bổ sung thông tin"} <= kinds
    asked = next(r for r in rows if r["Sự kiện"].value == "Đề nghị bổ sung thông tin")
    assert (asked["Từ"].value, asked["Sang"].value) == ("Đang xử lý", "Chờ bổ sung thông tin")
    assert asked["Ghi chú"].value == "Đề nghị gửi thêm hồ sơ"
    created = next(r for r in rows if r["Sự kiện"].value == "Tiếp nhận")
    assert isinstance(created["Hạn xử lý"].value, datetime)
    assert created["Hạn xử lý"].number_format == "dd/mm/yyyy hh:mm"
    steps = [r for r in rows if r["Sự kiện"].value == "Nhắc việc, báo cáo vượt cấp"]
    levels = {r["Cấp nhắc việc"].value for r in steps}
    assert levels >= {"Nhắc việc", "Cấp 1 (trưởng nhóm)", "Cấp 2 (điều phối)",
                      "Cấp 3 (lãnh đạo)"}, levels
    assert all(r["Lý do"].value and isinstance(r["Hạn xử lý"].value, datetime) for r in steps)
    told = {r["Cấp nhắc việc"].value: r["Số người được báo"].value for r in steps}
    assert told["Cấp 1 (trưởng nhóm)"] == 1
    assert told["Cấp 2 (điều phối)"] == "không có người nhận"  # no coordinator here
    assert told["Cấp 3 (lãnh đạo)"] == 2  # the two leaders
    assert events.freeze_panes == "A2"
    assert events.auto_filter.ref == f"A1:M{len(rows) + 1}"
    assert events.column_dimensions["M"].width >= 60

    sheet = book["Phiếu"]
    head = [c.value for c in sheet[1]]
    by_ref = {r[0].value: dict(zip(head, r, strict=True)) for r in sheet.iter_rows(min_row=2)}
    full = [r for r in by_ref.values() if r["Nội dung phản ánh (đầy đủ)"].value == LONG]
    assert len(full) == 1 and not str(full[0]["Nội dung"].value).endswith(LONG[-20:])
    for row in by_ref.values():
        assert row["Trạng thái"].value in {"Mới tiếp nhận", "Đã phân công", "Đang xử lý",
                                           "Chờ bổ sung thông tin", "Đã xử lý", "Đã đóng"}
        assert row["Nhóm xử lý"].value and not re.fullmatch(r"[a-z_]+", row["Nhóm xử lý"].value)
        assert row["Lĩnh vực"].value and not re.fullmatch(r"[a-z_]+", row["Lĩnh vực"].value)
        assert isinstance(row["Ngày tiếp nhận"].value, datetime)
        assert row["Ngày tiếp nhận"].number_format == "dd/mm/yyyy hh:mm"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref

    summary = book["Tổng hợp"]
    cells = {r[0].value: r[1] for r in summary.iter_rows() if r[0].value and len(r) > 1}
    share = cells["Phản hồi lần đầu đúng hạn"]
    assert share.number_format == "0.0%" and 0 <= share.value <= 1
    fr = digest.first_response
    assert abs(share.value - fr.met / fr.counted) < 1e-9
    group_head = next(r for r in summary.iter_rows(values_only=True) if r[0] == "Nhóm xử lý")
    assert [h for h in group_head if h].count("Quá hạn") == 1  # no duplicate column


async def test_csv_in_words_and_json_for_programs(app: App, clock: ManualClock, tmp_path: Path) -> None:
    month = await _month(app, clock)
    data = await load_export(app, month)
    _, events_csv = write_csv(tmp_path, "nov", data, app, "en")
    with events_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(re.fullmatch(r"\d\d/\d\d/2026 \d\d:\d\d", r["Time"]) for r in rows)
    asked = next(r for r in rows if r["Event"] == "Information requested")
    assert (asked["From"], asked["To"]) == (plain(t("state.in_progress", "en")),
                                            plain(t("state.waiting_reporter", "en")))
    assert not any(v.startswith("{") for r in rows for v in r.values())

    raw = json.loads(write_json(tmp_path / "nov-raw.json", data).read_text("utf-8"))
    assert {t["state"] for t in raw["tickets"]} <= {s.value for s in TicketState}
    escalated = [e for e in raw["events"] if e["kind"] == "escalated"]
    assert escalated and {"level", "reason", "due_at", "messages"} <= set(escalated[0]["data"])
    assert all(e["at"].endswith("+00:00") for e in raw["events"])
    assert any(t["description"] == LONG for t in raw["tickets"])
