"""Digests as people read them: Telegram messages and a standalone HTML report, from Jinja2.

Templates live in ``templates/digest`` and take every word from the ``digest`` catalogue, so one
template serves Vietnamese and English. Autoescaping is on: ticket titles, organisation and
people's names are user text and are escaped wherever they land; catalogue strings arrive as
``Markup`` (their parameters escaped by ``hotline.i18n.t``).

Telegram accepts only a small HTML subset and 4096 characters a message, so chat templates use
``b``/``i`` only, never across a line, and the text is cut between items (``pack_messages``);
the channel's own splitter (``hotline.text.split_message``) is the fallback for an oversized item.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from hotline.digests.kinds import Kinds
from hotline.digests.model import Digest, GroupDigest, ReporterDigest, TicketLine
from hotline.digests.period import Period, display_label
from hotline.i18n import format_local_date, format_local_datetime, normalise_language, t
from hotline.taxonomy import Taxonomy
from hotline.text import TELEGRAM_MESSAGE_LIMIT, split_message, utf16_length
from templates import TEMPLATES_DIR

RAG_MARK = {"green": "🟢", "amber": "🟠", "red": "🔴"}
#: Items per list in a chat message; the attached report has them all.
CHAT_LIST_LIMIT = 30

View = Digest | GroupDigest | ReporterDigest


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR / "digest")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


def format_number(value: float | int | None, lang: str, digits: int = 0) -> str:
    """``1.234,5`` in Vietnamese, ``1,234.5`` in English; an em dash for no value."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    if normalise_language(lang) == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def format_percent(value: float | None, lang: str) -> str:
    return "—" if value is None else format_number(value, lang, 0) + "%"


def _split(pairs: tuple[tuple[str, int], ...], prefix: str, lang: str) -> str:
    """"16 raised by enterprises, 20 by ministries": the non-zero parts, in reporter-kind order."""
    parts = [str(t(f"{prefix}.{kind}", lang, n=format_number(n, lang))) for kind, n in pairs if n]
    return ", ".join(parts)


def kinds_headline(kinds: Kinds, lang: str, tz: str) -> Markup:
    """The programme's own sentence: "N kinds resolved (E raised by enterprises, M by
    ministries), K open, due …" -- the same words on every surface that shows kinds."""
    raised = _split(kinds.resolved_by, "digest.kinds.raised", lang)
    due = (t("digest.kinds.due", lang, date=format_local_date(kinds.due, lang, tz))
           if kinds.due is not None and kinds.open else "")
    return t("digest.kinds.headline", lang, resolved=format_number(kinds.resolved, lang),
             raised=t("digest.kinds.raised_wrap", lang, parts=raised) if raised else "",
             open=format_number(kinds.open, lang), due=due)


def kinds_detail(kinds: Kinds, lang: str) -> Markup:
    """Kinds received and overdue, and the affected reporters by who they are."""
    affected = _split(kinds.affected_by, "digest.kinds.affected", lang)
    return t("digest.kinds.detail", lang, received=format_number(kinds.received, lang),
             overdue=format_number(kinds.overdue, lang),
             affected=format_number(kinds.affected, lang),
             split=t("digest.kinds.raised_wrap", lang, parts=affected) if affected else "")


@dataclass(frozen=True)
class Helpers:
    """What templates call: translations and formatting bound to one language."""

    lang: str
    taxonomy: Taxonomy
    tz: str
    digest: Digest

    def __call__(self, key: str, **params: Any) -> Markup:
        return t(key, self.lang, **params)

    def num(self, value: float | int | None, digits: int = 0) -> str:
        return format_number(value, self.lang, digits)

    def days(self, value: float | None) -> str:
        return format_number(value, self.lang, 1)

    def pct(self, value: float | None) -> str:
        return format_percent(value, self.lang)

    def date(self, value: date | datetime) -> str:
        return format_local_date(value, self.lang, self.tz)

    def datetime(self, value: datetime) -> str:
        return format_local_datetime(value, self.lang, self.tz)

    def category(self, code: str) -> str:
        cat = self.taxonomy.categories.get(code)
        return cat.name(self.lang) if cat is not None else code

    def group(self, group_id: int) -> str:
        for g in self.digest.groups:
            if g.group_id == group_id:
                return g.name(self.lang)
        return "—"

    def state(self, value: str) -> str:
        return str(t(f"state.{value}", self.lang))

    def kind(self, value: str) -> str:
        return str(t(f"org_kind.{value}", self.lang))

    def rag(self, value: str) -> str:
        return RAG_MARK.get(value, "")

    def rag_name(self, value: str) -> str:
        return str(t(f"digest.stock.{value}", self.lang))

    def assignee(self, line: TicketLine) -> str:
        return line.assignee_name or str(t("digest.line.unassigned", self.lang))

    def kinds_headline(self) -> Markup:
        return kinds_headline(self.digest.kinds, self.lang, self.tz)

    def kinds_detail(self) -> Markup:
        return kinds_detail(self.digest.kinds, self.lang)

    def title(self) -> str:
        """"Weekly digest 2026-W49", or for a running period "..., to Thursday 03/12 14:35"."""
        return period_title(self.digest.period, self.lang)

    def as_of_line(self) -> str:
        """The footnote saying which instant the "at the end" figures are judged at."""
        p = self.digest.period
        if p.as_of is not None:
            return str(t("digest.as_of_now", self.lang, date=self.datetime(p.as_of)))
        return str(t("digest.as_of_end", self.lang, date=self.datetime(p.end)))


def period_title(period: Period, lang: str) -> str:
    """A period's title in ``lang`` with the one "as of" label (``period.display_label``)."""
    return str(t(f"digest.title_{period.kind}", lang, label=display_label(period, lang)))


def helpers(digest: Digest, lang: str, taxonomy: Taxonomy) -> Helpers:
    return Helpers(normalise_language(lang), taxonomy, digest.period.tz, digest)


def _tidy(text: str) -> str:
    """Templates leave blank-line runs and trailing spaces where optional blocks were skipped."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def _digest_of(view: View) -> Digest:
    return view if isinstance(view, Digest) else view.digest


def telegram_text(
    view: View,
    lang: str,
    taxonomy: Taxonomy,
    *,
    generated_at: datetime | None = None,
    limit: int = CHAT_LIST_LIMIT,
) -> str:
    """The whole chat text of a view (may exceed one message; see ``telegram_messages``)."""
    digest = _digest_of(view)
    h = helpers(digest, lang, taxonomy)
    name = {
        Digest: "telegram_leaders.j2",
        GroupDigest: "telegram_group.j2",
        ReporterDigest: "telegram_reporter.j2",
    }[type(view)]
    return _tidy(_render(name, view=view, d=digest, _=h, h=h, limit=limit, generated_at=generated_at))


def _blocks(text: str) -> list[str]:
    """Lines, with indented continuation lines (a ticket's title) kept with their item."""
    blocks: list[str] = []
    for line in text.split("\n"):
        if blocks and line.startswith("    "):
            blocks[-1] += "\n" + line
        else:
            blocks.append(line)
    return blocks


def pack_messages(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` UTF-16 units between items.

    Whole items (a line and its indented continuation) are packed greedily, so a ticket never
    starts in one message and ends in the next; the templates keep every tag within a line, so
    each piece is balanced. An item longer than a message (never produced by the templates)
    falls back to ``hotline.text.split_message``.
    """
    pieces: list[str] = []
    current: str | None = None
    for block in _blocks(text):
        candidate = block if current is None else current + "\n" + block
        if utf16_length(candidate) <= limit:
            current = candidate
            continue
        if current is not None:
            pieces.append(current)
        if utf16_length(block) <= limit:
            current = block
        else:
            parts = split_message(block, limit)
            pieces.extend(parts[:-1])
            current = parts[-1] if parts else None
    if current is not None and current.strip():
        pieces.append(current)
    return pieces


def telegram_messages(
    view: View,
    lang: str,
    taxonomy: Taxonomy,
    *,
    generated_at: datetime | None = None,
    limit: int = CHAT_LIST_LIMIT,
    max_chars: int = TELEGRAM_MESSAGE_LIMIT,
) -> list[str]:
    """Chat messages of at most ``max_chars`` (UTF-16 units), cut between items."""
    text = telegram_text(view, lang, taxonomy, generated_at=generated_at, limit=limit)
    return pack_messages(text, max_chars)


def html_report(
    view: Digest | GroupDigest,
    lang: str,
    taxonomy: Taxonomy,
    *,
    chart_png: bytes | None = None,
    generated_at: datetime | None = None,
) -> str:
    """A self-contained, print-friendly HTML page (inline CSS, chart inlined, no scripts)."""
    digest = _digest_of(view)
    h = helpers(digest, lang, taxonomy)
    chart = "data:image/png;base64," + base64.b64encode(chart_png).decode() if chart_png else None
    css = (TEMPLATES_DIR / "digest" / "report.css").read_text("utf-8")
    return _render(
        "report.html.j2",
        view=view,
        d=digest,
        _=h,
        h=h,
        lang=h.lang,
        chart=chart,
        css=Markup(css),
        generated_at=generated_at,
        group_view=view if isinstance(view, GroupDigest) else None,
    )


def caption(key: str, digest: Digest, lang: str, taxonomy: Taxonomy) -> str:
    h = helpers(digest, lang, taxonomy)
    return str(t(f"digest.caption.{key}", h.lang, title=h.title()))


def plain_summary(digest: Digest) -> str:
    """One line for the CLI: the headline numbers, in English."""
    f, s = digest.flow, digest.stock
    return (
        f"{display_label(digest.period, 'en')}: new {f.new}, resolved {f.resolved}, closed {f.closed}, "
        f"reopened {f.reopened}, rejected {f.rejected}; open at end {s.open} "
        f"(overdue {s.overdue}); red alerts {sum(a.open_at_end for a in digest.red_alerts)}"
    )
