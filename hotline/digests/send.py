"""Who gets which digest, the files behind it, and queueing it exactly once per period.

Audiences: ``leaders`` (the whole programme), ``group:CODE`` (that group's leads), and
``reporters`` (reporters who opted in, each about their own tickets). A send writes one
``DigestRun`` row for (audience, period) in the same transaction as the outbox rows, so the
unique constraint -- not a flag in memory -- makes a second send of the same period, by a
restarted scheduler or a second worker, a no-op.

Files (chart, HTML report, workbook) are written before the transaction, under
``output_dir/<period>/``, because the outbox holds paths that the dispatcher uploads later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hotline.digests.chart import chart_png
from hotline.digests.compute import group_view, reporter_view
from hotline.digests.data import DigestInputs, build_digest_with_inputs
from hotline.digests.model import Digest
from hotline.digests.period import Period
from hotline.digests.render import caption, html_report, telegram_messages
from hotline.domain.enums import Role
from hotline.errors import InvalidInput
from hotline.i18n import normalise_language
from hotline.messages import BULK_DEDUPE_PREFIX, OutboundMessage
from hotline.services.notify import contact_for, enqueue
from storage.models import DigestRun, Person

AudienceKind = Literal["leaders", "group", "reporters"]
MESSAGE_SEPARATOR = "\n\n" + "-" * 20 + "\n\n"


@dataclass(frozen=True)
class Audience:
    kind: AudienceKind
    group_code: str | None = None

    @property
    def key(self) -> str:
        """What ``DigestRun.audience`` stores."""
        return f"group:{self.group_code}" if self.kind == "group" else self.kind

    @property
    def slug(self) -> str:
        return f"group-{self.group_code}" if self.kind == "group" else self.kind


LEADERS = Audience("leaders")
REPORTERS = Audience("reporters")


def parse_audience(text: str) -> Audience:
    """``leaders`` | ``group:CODE`` | ``reporters`` (the group code is checked by the caller)."""
    value = (text or "").strip()
    if value == "leaders":
        return LEADERS
    if value == "reporters":
        return REPORTERS
    if value.startswith("group:") and value[6:].strip():
        return Audience("group", value[6:].strip())
    raise InvalidInput(
        f"unknown audience {text!r}: use leaders, group:CODE or reporters", key="digest.error.bad_audience"
    )


async def check_group(app: Any, audience: Audience) -> None:
    if audience.kind != "group":
        return
    async with app.uow() as uow:
        if await uow.people.group(audience.group_code or "") is None:
            codes = ", ".join(g.code for g in await uow.people.groups())
            raise InvalidInput(
                f"unknown owner group {audience.group_code!r} (known: {codes})", key="error.unknown_group"
            )


# ---------------------------------------------------------------------------------------------
# Rendering to files
# ---------------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """One audience's digest in one language: chat pieces and the files that go with them."""

    lang: str
    messages: list[str]
    chart: Path | None = None
    html: Path | None = None
    xlsx: Path | None = None
    text_file: Path | None = None

    @property
    def files(self) -> list[Path]:
        return [p for p in (self.text_file, self.chart, self.html, self.xlsx) if p is not None]


@dataclass
class ReporterMessages:
    person_id: int
    lang: str
    messages: list[str]


@dataclass
class Bundle:
    audience: Audience
    period: Period
    digest: Digest
    taxonomy: Any
    by_lang: dict[str, Rendered] = field(default_factory=dict)
    reporters: list[ReporterMessages] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [p for r in self.by_lang.values() for p in r.files]


def folder_for(out_dir: Path, period: Period) -> Path:
    return Path(out_dir).resolve() / period.label


async def render_bundle(
    app: Any,
    digest: Digest,
    audience: Audience,
    languages: list[str],
    out_dir: Path,
    *,
    now: datetime,
    inputs: DigestInputs | None = None,
    reporters: list[Person] | None = None,
) -> Bundle:
    """Write the audience's files in each language and render its chat messages.

    The rows a monthly workbook needs are read here; the rendering itself (templates, chart,
    workbook, files) runs in a worker thread so a scheduled digest does not stall the bot's
    event loop for the second or two it takes.
    """
    export_data = None
    if audience.kind == "leaders" and digest.period.kind == "month":
        from hotline.digests.export import load_export

        export_data = await load_export(app, digest.period, inputs)
    return await asyncio.to_thread(
        _render_files, app, digest, audience, languages, out_dir, now, reporters or [], export_data
    )


def _render_files(
    app: Any,
    digest: Digest,
    audience: Audience,
    languages: list[str],
    out_dir: Path,
    now: datetime,
    reporters: list[Person],
    export_data: Any,
) -> Bundle:
    folder = folder_for(out_dir, digest.period)
    folder.mkdir(parents=True, exist_ok=True)
    bundle = Bundle(audience, digest.period, digest, app.taxonomy)
    stem = f"{digest.period.label}-{audience.slug}"
    if audience.kind == "reporters":
        for person in reporters:
            view = reporter_view(digest, person.id)
            if view.tickets:
                messages = telegram_messages(view, person.language, app.taxonomy, generated_at=now)
                bundle.reporters.append(
                    ReporterMessages(person.id, normalise_language(person.language), messages)
                )
        for lang in languages:
            texts = [MESSAGE_SEPARATOR.join(r.messages) for r in bundle.reporters if r.lang == lang]
            if not texts:  # nobody to tell in this language: no file, rather than an empty one
                continue
            path = folder / f"{stem}-{lang}-telegram.txt"
            path.write_text(MESSAGE_SEPARATOR.join(texts) + "\n", "utf-8")
            bundle.by_lang[lang] = Rendered(lang, [], text_file=path)
        return bundle

    view: Any = digest if audience.kind == "leaders" else group_view(digest, audience.group_code or "")
    for lang in languages:
        rendered = Rendered(lang, telegram_messages(view, lang, app.taxonomy, generated_at=now))
        png = None
        if audience.kind == "leaders":
            png = chart_png(digest, lang)
            rendered.chart = folder / f"{stem}-{lang}.png"
            rendered.chart.write_bytes(png)
        rendered.html = folder / f"{stem}-{lang}.html"
        rendered.html.write_text(
            html_report(view, lang, app.taxonomy, chart_png=png, generated_at=now), "utf-8"
        )
        if export_data is not None:
            from hotline.digests.export import write_xlsx

            rendered.xlsx = write_xlsx(folder / f"{stem}-{lang}.xlsx", export_data, app, lang, digest)
        rendered.text_file = folder / f"{stem}-{lang}-telegram.txt"
        rendered.text_file.write_text(MESSAGE_SEPARATOR.join(rendered.messages) + "\n", "utf-8")
        bundle.by_lang[lang] = rendered
    return bundle


# ---------------------------------------------------------------------------------------------
# Recipients and the outbox
# ---------------------------------------------------------------------------------------------


async def recipients(uow: Any, audience: Audience) -> list[Person]:
    if audience.kind == "leaders":
        return await uow.people.with_role(Role.LEADER)
    if audience.kind == "group":
        group = await uow.people.group(audience.group_code or "")
        if group is None:
            return []
        return await uow.people.with_role(Role.LEAD, group_id=group.id)
    stmt = (
        select(Person)
        .where(Person.role == Role.REPORTER.value, Person.active.is_(True), Person.digest_opt_in.is_(True))
        .order_by(Person.id)
    )
    return list((await uow.session.execute(stmt)).scalars())


@dataclass(frozen=True)
class SendResult:
    audience: str
    period: str
    status: Literal["sent", "already_sent"]
    messages: int = 0
    people: int = 0
    files: tuple[Path, ...] = ()


async def already_sent(app: Any, audience: Audience, period: Period) -> bool:
    async with app.uow() as uow:
        found = await uow.session.execute(
            select(DigestRun.id).where(DigestRun.audience == audience.key, DigestRun.period == period.label)
        )
        return found.first() is not None


def _outbound(
    contact: Any, text: str, *, photo: Path | None = None, document: Path | None = None, meta: dict[str, Any]
) -> OutboundMessage:
    return OutboundMessage(
        channel=contact.channel,
        chat_id=contact.chat_id,
        text=text,
        photo=str(photo) if photo else None,
        document=str(document) if document else None,
        meta=meta,
    )


async def send_digest(
    app: Any,
    period: Period,
    audience: Audience,
    *,
    now: datetime,
    out_dir: Path | None = None,
    digest: Digest | None = None,
    inputs: DigestInputs | None = None,
) -> SendResult:
    """Queue ``audience``'s digest of ``period`` in the outbox, once ever.

    A repeated call (same audience and period) returns ``already_sent`` and writes nothing.
    A period that has not ended (``period.as_of``) is refused: its figures are provisional,
    and sending them would use up the period's one send before the real digest is due.
    """
    if period.as_of is not None:
        raise InvalidInput(
            f"{period.label} has not ended: preview it with --dry-run; its digest is sent after it ends",
            key="digest.error.unfinished_send", label=period.label,
        )
    if await already_sent(app, audience, period):
        return SendResult(audience.key, period.label, "already_sent")
    if digest is None:
        digest, inputs = await build_digest_with_inputs(app, period)
    async with app.uow() as uow:
        people = await recipients(uow, audience)
    languages = sorted({normalise_language(p.language) for p in people}) or [app.settings.default_language]
    bundle = await render_bundle(
        app,
        digest,
        audience,
        languages,
        out_dir or app.settings.output_dir,
        now=now,
        inputs=inputs,
        reporters=people,
    )
    try:
        async with app.uow() as uow:
            run = DigestRun(audience=audience.key, period=period.label, created_at=now, messages=0)
            uow.session.add(run)
            await uow.flush()  # PostgreSQL: a concurrent sender waits here, then fails on commit
            count, reached = await _queue(uow, bundle, people, now)
            run.messages = count
            await uow.commit()
    except IntegrityError:
        return SendResult(audience.key, period.label, "already_sent")
    return SendResult(audience.key, period.label, "sent", count, reached, tuple(bundle.files))


async def _queue(uow: Any, bundle: Bundle, people: list[Person], now: datetime) -> tuple[int, int]:
    digest, audience = bundle.digest, bundle.audience
    label = digest.period.label
    by_person = {r.person_id: r for r in bundle.reporters}
    count = reached = 0
    for person in people:
        contact = await contact_for(uow, person)
        if contact is None or not person.active:
            continue
        lang = normalise_language(person.language)
        meta = {"key": f"digest.{audience.kind}", "period": label, "audience": audience.key}
        outgoing: list[OutboundMessage] = []
        if audience.kind == "reporters":
            mine = by_person.get(person.id)
            if mine is None:
                continue
            outgoing = [_outbound(contact, text, meta=meta) for text in mine.messages]
        else:
            rendered = bundle.by_lang[lang]
            outgoing = [_outbound(contact, text, meta=meta) for text in rendered.messages]
            # (caption key, photo, document): the chart is a photo, the report and workbook files.
            attachments = (
                ("chart", rendered.chart, None),
                ("report", None, rendered.html),
                ("workbook", None, rendered.xlsx),
            )
            for key, photo, document in attachments:
                if photo is not None or document is not None:
                    outgoing.append(
                        _outbound(contact, caption(key, digest, lang, bundle.taxonomy),
                                  photo=photo, document=document, meta=meta)
                    )
        for index, message in enumerate(outgoing):
            enqueue(
                uow,
                message,
                now=now,
                contact_id=contact.id,
                person_id=person.id,
                dedupe_key=f"{BULK_DEDUPE_PREFIX}{label}:{audience.key}:{person.id}:{index}"[:120],
            )
        count += len(outgoing)
        reached += bool(outgoing)
    return count, reached
