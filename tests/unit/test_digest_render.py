"""Rendering: Telegram's HTML subset under 4096 characters, escaping, the archive page, the chart."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from PIL import Image

from hotline.digests import period as P
from hotline.digests.chart import chart_png, overdue_title
from hotline.digests.compute import Rules, compute_digest, group_view, reporter_view
from hotline.digests.model import AlertRow, Digest, EventRow, GroupInfo, TicketInfo, TrendRow
from hotline.digests.render import (
    format_number,
    html_report,
    pack_messages,
    telegram_messages,
    telegram_text,
)
from hotline.domain import sla
from hotline.domain.calendar import BusinessCalendar
from hotline.taxonomy import load_taxonomy
from hotline.text import TELEGRAM_MESSAGE_LIMIT, utf16_length
from tests.conftest import local

CAL = BusinessCalendar()
RULES = Rules(calendar=CAL, day_seconds=CAL.business_day_seconds, red_alert_threshold=3)
TAXONOMY = load_taxonomy(None)
EVIL = '<script>alert("x")</script> & <b>bold</b> "quoted" 🚧'
TELEGRAM_TAGS = {"b", "i", "u", "s", "a", "code", "pre"}


class SubsetChecker(HTMLParser):
    """Fails on any tag outside Telegram's subset, on attributes other than a@href, and on
    unbalanced markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in TELEGRAM_TAGS, f"tag <{tag}> not allowed by Telegram"
        assert all(name == "href" and tag == "a" for name, _ in attrs), attrs
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> in {self.stack}"
        self.stack.pop()

    def handle_entityref(self, name: str) -> None:
        assert name in {"lt", "gt", "amp", "quot"}, name

    def check(self, text: str) -> None:
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed {self.stack}"


def _events(n_tickets: int) -> tuple[list[EventRow], dict[int, TicketInfo]]:
    events: list[EventRow] = []
    infos: dict[int, TicketInfo] = {}
    start = local(2026, 10, 1, 9)
    eid = 0

    def add(tid: int, kind: str, at, to=None, **data) -> None:  # type: ignore[no-untyped-def]
        nonlocal eid
        eid += 1
        events.append(EventRow(tid, kind, at, to, data, eid))

    for tid in range(1, n_tickets + 1):
        at = start + timedelta(hours=tid)
        group = ("mps", "moj", "mof")[tid % 3]
        days = (3, 10, 15)[tid % 3]
        add(
            tid,
            "created",
            at,
            "new",
            category=("data", "legal", "funding")[tid % 3],
            group=group,
            priority="normal",
            sla_days=days,
            deadline=sla.start_cycle(CAL, at, days).deadline_at.isoformat(),
        )
        add(tid, "assigned", at, "assigned", assignee_id=tid % 5)
        if tid % 4 == 0:
            add(tid, "acknowledged", at + timedelta(hours=2), "in_progress")
            add(tid, "resolved", at + timedelta(days=3), "resolved")
        if tid % 8 == 0:
            add(tid, "confirmed", at + timedelta(days=4), "closed")
            add(tid, "rated", at + timedelta(days=4), stars=tid % 5 + 1)
        infos[tid] = TicketInfo(
            tid,
            f"HL-2026-{tid:06d}",
            f"{EVIL} số {tid} " + "x" * (tid % 90),
            500 + tid % 2,
            tid,
            ("enterprise", "ministry", "locality")[tid % 3],
            f"Org {EVIL}",
        )
    return events, infos


@pytest.fixture(scope="module")
def big() -> Digest:
    events, infos = _events(900)
    groups = [
        GroupInfo(1, "mps", "Bộ Công an", "Ministry of Public Security"),
        GroupInfo(2, "moj", "Bộ Tư pháp", f"Justice {EVIL}"),
        GroupInfo(3, "mof", "Bộ Tài chính", "Ministry of Finance"),
    ]
    period = P.parse_month("2026-11")
    trend = [TrendRow(e.ticket_id, e.kind, e.at) for e in events if e.kind in ("created", "resolved")]
    names = {i: f"Cán bộ {EVIL} {i}" for i in range(5)}
    alerts = [AlertRow(1, local(2026, 11, 3, 9), None, 50)]
    return compute_digest(
        period,
        events,
        infos,
        groups,
        RULES,
        alerts=alerts,
        trend=trend,
        names=names,
        categories=list(TAXONOMY.categories),
    )


def _views(d: Digest):  # type: ignore[no-untyped-def]
    return [d, group_view(d, "mps"), group_view(d, "moj"), reporter_view(d, 500)]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_chat_message_fits_and_is_valid_telegram_html(big: Digest, lang: str) -> None:
    assert big.stock.open > 300 and big.stock.overdue > 100  # a digest worth splitting
    for view in _views(big):
        full = telegram_text(view, lang, TAXONOMY)
        pieces = telegram_messages(view, lang, TAXONOMY)
        assert pieces
        for piece in pieces:
            assert utf16_length(piece) <= TELEGRAM_MESSAGE_LIMIT
            SubsetChecker().check(piece)
            assert "<script" not in piece and "<b>bold" not in piece
        # Cut only between items: nothing lost, no item broken in two.
        assert "\n".join(pieces) == full
    reporter_pieces = telegram_messages(reporter_view(big, 500), lang, TAXONOMY)
    assert len(reporter_pieces) > 1
    assert "&lt;script&gt;" in reporter_pieces[0]


def test_user_text_is_escaped_everywhere(big: Digest) -> None:
    text = telegram_text(group_view(big, "moj"), "en", TAXONOMY)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in text
    assert "Justice &lt;script&gt;" in text
    page = html_report(big, "en", TAXONOMY)
    assert "<script" not in page and "&lt;script&gt;" in page


def test_long_lists_are_capped_in_chat_with_a_pointer_to_the_report(big: Digest) -> None:
    view = group_view(big, "mps")
    assert len(view.queue) > 30
    text = telegram_text(view, "vi", TAXONOMY)
    assert f"và {len(view.queue) - 30} phiếu khác" in text
    assert text.count("HL-2026-") <= 3 * 30


@pytest.mark.filterwarnings("ignore:Glyph")
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_archive_page_is_self_contained(big: Digest, lang: str) -> None:
    png = chart_png(big, lang)
    for view in (big, group_view(big, "mps")):
        page = html_report(view, lang, TAXONOMY, chart_png=png, generated_at=local(2026, 12, 10, 8))
        assert page.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in page
        assert "<style>" in page and "@media print" in page
        assert not re.search(r"<script|<link|<iframe|(src|href)=\"https?:", page)
        assert 'src="data:image/png;base64,' in page
        parser = HTMLParser()
        parser.feed(page)
    leaders = html_report(big, lang, TAXONOMY)
    for g in big.groups:
        assert g.name(lang).split("<")[0].strip() in leaders


@pytest.mark.filterwarnings("ignore:Glyph")  # the test's emoji group name; real names have none
def test_chart_is_a_png(big: Digest) -> None:
    png = chart_png(big, "vi")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert image.size[0] >= 1000 and image.size[1] >= 400
    empty = compute_digest(P.parse_week("2026-W48"), [], {}, [], RULES)
    assert chart_png(empty, "en")[:4] == b"\x89PNG"


def test_packing_keeps_items_whole() -> None:
    item = "• <b>HL-1</b> — x\n    <i>title</i>"
    text = "<b>Head</b>\n" + "\n".join([item] * 200)
    pieces = pack_messages(text, 500)
    assert "\n".join(pieces) == text
    assert all(utf16_length(p) <= 500 and not p.startswith("    ") for p in pieces)
    huge = pack_messages("a" * 1200, 500)
    assert [len(p) for p in huge] == [500, 500, 200]


def test_numbers_in_each_language() -> None:
    assert format_number(1234.5, "vi", 1) == "1.234,5"
    assert format_number(1234.5, "en", 1) == "1,234.5"
    assert format_number(None, "vi") == "—"
    assert format_number(7, "en") == "7"


def test_an_empty_week_still_reads_well() -> None:
    empty = compute_digest(
        P.parse_week("2026-W48"), [], {}, [GroupInfo(1, "mps", "Bộ Công an", "MPS")], RULES
    )
    for lang in ("vi", "en"):
        (message,) = telegram_messages(empty, lang, TAXONOMY)
        SubsetChecker().check(message)
        assert "2026-W48" in message
        (lead,) = telegram_messages(group_view(empty, "mps"), lang, TAXONOMY)
        SubsetChecker().check(lead)
        (mine,) = telegram_messages(reporter_view(empty, 1), lang, TAXONOMY)
        assert "no open report" in mine or "không có phản ánh" in mine


def test_group_table_has_one_overdue_column(big: Digest) -> None:
    """Red (RAG) is overdue by definition: the per-group table says "Quá hạn" once."""
    page = html_report(big, "vi", TAXONOMY)
    section = page[page.index("Theo nhóm xử lý"):]
    head = section[section.index("<thead>"):section.index("</thead>")]
    assert head.count("Quá hạn") == 1
    row = section[section.index("<tbody>"):section.index("</tr>", section.index("<tbody>"))]
    assert len(re.findall(r"<td[ >]", row)) == len(re.findall(r"<th[ >]", head))


def test_a_running_period_is_titled_as_of_its_instant(big: Digest) -> None:
    """A week still running is titled "..., đến thứ Năm 03/12 14:35" in chat and the report,
    and the report says the figures are as of then, not the period's end."""
    from dataclasses import replace

    at = local(2026, 12, 3, 14, 35)
    running = P.as_of(P.parse_week("2026-W49"), at)
    d = replace(big, period=running)
    assert P.display_label(running, "vi") == "2026-W49, đến thứ Năm 03/12 14:35"
    assert P.display_label(running, "en") == "2026-W49, to Thursday 03/12 14:35"
    assert "Bản tin tuần 2026-W49, đến thứ Năm 03/12 14:35" in telegram_messages(d, "vi", TAXONOMY)[0]
    page = html_report(d, "vi", TAXONOMY)
    assert "Kỳ chưa kết thúc: số liệu tính đến 14:35 03/12/2026" in page
    assert "cuối kỳ" not in page.split("<footer>")[1]
    finished = P.parse_week("2026-W48")
    assert P.as_of(finished, at) is finished and P.display_label(finished, "vi") == "2026-W48"


def test_the_overdue_chart_of_a_running_period_is_not_titled_at_its_end(big: Digest) -> None:
    """The chart's overdue panel is judged as of now for a running week: its title carries the
    "to Thursday 03/12 14:35" label, never "at the end of"; a finished week keeps "cuối kỳ"."""
    from dataclasses import replace

    running = replace(big, period=P.as_of(P.parse_week("2026-W49"), local(2026, 12, 3, 14, 35)))
    assert overdue_title(running, "vi") == "Phiếu quá hạn theo nhóm xử lý\n2026-W49, đến thứ Năm 03/12 14:35"
    assert overdue_title(running, "en") == "Overdue per owner group\n2026-W49, to Thursday 03/12 14:35"
    finished = replace(big, period=P.parse_week("2026-W48"))
    assert overdue_title(finished, "vi") == "Phiếu quá hạn theo nhóm xử lý\ncuối kỳ 2026-W48"
    assert overdue_title(finished, "en") == "Overdue per owner group\nat the end of 2026-W48"
