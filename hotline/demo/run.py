"""``hotline demo``: eight weeks of a working group's hotline, replayed through the real engine.

Everything goes through the same code a live deployment runs: people join with invite codes and
register through chat, reports are classified by the real classifier and filed with one tap,
members act through chat commands and buttons, the scheduler's own sweep and digest jobs run on
a simulated clock (so escalations, red alerts, auto-closing and the Monday digest happen), and
the files leaders receive are written at the end. A seed makes the run reproducible.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from handlers.engine import Engine
from handlers.harness import ScriptedUser
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.demo.roster import ORGANISATIONS, person_name, tax_code
from hotline.deps import App
from hotline.domain import payloads as P
from hotline.domain.enums import Role
from hotline.services import people
from hotline.services.app import open_app
from storage.models import (
    Escalation,
    Extension,
    GroupAlert,
    OutboxMessage,
    Person,
    Ticket,
    TicketEvent,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
#: The demo ends on Monday 23 November 2026 at 08:00, when the weekly digest job runs.
END = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
SWEEP_HOURS = (8, 10, 13, 15, 17, 21)  # 21:00 shows messages held until working hours
Action = Callable[[], Awaitable[None]]

ANSWERS = [
    "Đã gửi bổ sung văn bản số 123/CV-UBND kèm danh sách hệ thống liên quan.",
    "Chung toi da gui lai ho so va email dau moi ky thuat.",
    "Attached the contract and the Treasury's refusal letter.",
]
UPDATES = [
    "Đã làm việc với đơn vị chủ quản, dự kiến có văn bản hướng dẫn trong tuần.",
    "Đã chuyển vụ chuyên môn nghiên cứu, đang lấy ý kiến các bộ liên quan.",
    "Meeting held with the agency; a draft answer is being reviewed.",
]
RESOLUTIONS = [
    "Đã ban hành văn bản hướng dẫn, đề nghị đơn vị thực hiện theo hướng dẫn mới.",
    "Đã kết nối và cấp quyền khai thác dữ liệu cho đơn vị.",
    "The ministry issued guidance; the payment can now be processed.",
    "Đã làm rõ thẩm quyền, giao Sở chủ trì thực hiện.",
]


@dataclass
class DemoSummary:
    out_dir: Path
    database: Path
    files: list[Path]
    rows: list[tuple[str, str]]
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


#: Blockers several organisations hit, each first written by one enterprise, then by others in
#: their own words; the later reporters follow the first ticket instead of filing.
FOLLOW_STORIES: tuple[tuple[str, ...], ...] = (
    ("Nghị định hướng dẫn Luật Giao dịch điện tử 2023 đến nay vẫn chưa được ban hành, doanh "
     "nghiệp không biết áp dụng thế nào với hợp đồng điện tử.",
     "The decree guiding the 2023 Electronic Transactions Law has still not been issued; we "
     "cannot use e-contracts.",
     "chua co nghi dinh huong dan luat giao dich dien tu 2023, hop dong dien tu bi vuong"),
    ("Kho bạc nhà nước yêu cầu nộp bản giấy toàn bộ chứng từ thanh toán dù đã ký số, làm chậm "
     "giải ngân kinh phí nhiệm vụ khoa học.",
     "kho bac van doi chung tu giay du da ky so, cham giai ngan kinh phi khoa hoc"),
    ("Cơ sở dữ liệu quốc gia về dân cư chưa chia sẻ thông tin cho hệ thống của ngân hàng, "
     "khách hàng vẫn phải xuất trình bản sao căn cước.",
     "The national population database does not share data with banks, customers still show "
     "copies of their ID cards."),
)


@dataclass
class _Case:
    """What will happen to one filed report."""

    ref: str
    plan: str
    reporter: ScriptedUser
    group: str


class DemoRun:
    def __init__(self, app: App, clock: ManualClock, seed: int,
                 on_progress: Callable[[float, str], None]) -> None:
        self.app = app
        self.clock = clock
        self.rng = random.Random(seed)
        self.engine = Engine(app)
        self.on_progress = on_progress
        self.agenda: list[tuple[datetime, int, Action]] = []
        self.seq = itertools.count()
        self.reporters: list[ScriptedUser] = []
        self.staff: dict[int, ScriptedUser] = {}  # person id -> chat user
        self.coordinators: list[ScriptedUser] = []
        self.cases: list[_Case] = []
        self.texts = [json.loads(line) for line in resources.files("hotline.demo")
                      .joinpath("reports.jsonl").read_text("utf-8").splitlines() if line.strip()]
        self.users = itertools.count(1)
        self.actions_failed = 0
        self.triaged = False
        self.duplicate_planned = False

    # --- agenda ------------------------------------------------------------------------------

    def at(self, when: datetime, action: Action) -> None:
        heapq.heappush(self.agenda, (when, next(self.seq), action))

    def later(self, business_days: float, action: Action) -> None:
        when = self.app.calendar.add_business_days(self.clock.now(), business_days)
        self.at(when, action)

    # --- people --------------------------------------------------------------------------------

    def user(self, name: str, lang: str = "vi") -> ScriptedUser:
        return ScriptedUser(self.engine, f"demo-{next(self.users)}", channel="console",
                            language=lang, display_name=name)

    async def join(self, role: Role, group: str | None, name: str, lang: str = "vi") -> ScriptedUser:
        async with self.app.uow() as uow:
            issued = await people.create_invite(uow, self.app, role, group)
            await uow.commit()
        chat = self.user(name, lang)
        await chat.say(f"/join {issued.code}")
        if lang == "en":
            await chat.say("/lang en")
        async with self.app.uow() as uow:
            contact = await uow.people.contact("console", chat.user_id)
            assert contact is not None and contact.person_id is not None, chat.text
            self.staff[contact.person_id] = chat
        return chat

    async def build_programme(self) -> None:
        index = itertools.count()
        for code in self.app.taxonomy.groups:
            for _ in range(2):
                await self.join(Role.MEMBER, code, person_name(next(index)))
            await self.join(Role.LEAD, code, person_name(next(index)))
        for _ in range(2):
            self.coordinators.append(await self.join(Role.COORDINATOR, None, person_name(next(index))))
        await self.join(Role.LEADER, None, person_name(next(index)))
        await self.join(Role.LEADER, None, "Deputy Minister (demo)", "en")
        for number, org in enumerate(ORGANISATIONS):
            chat = self.user(person_name(100 + number), org.language)
            await chat.say("/start")
            await chat.press(P.build(P.LANG, org.language))
            await chat.say(org.name)
            await chat.press(P.build(P.ORG_KIND, org.kind.value))
            if org.kind.value == "enterprise":
                await chat.say(tax_code(number))
            else:
                await chat.press(P.build(P.SKIP, "tax"))
            await chat.say(person_name(100 + number))
            self.reporters.append(chat)

    # --- the story of one report ------------------------------------------------------------

    async def file_report(self, number: int) -> None:
        reporter = self.rng.choice(self.reporters)
        item = self.texts[number % len(self.texts)]
        text = item["text"]
        await reporter.say(text)
        verbs = {b.payload.split(":")[0] for b in reporter.buttons()}
        if P.SIMILAR_FILE in verbs:  # offered a similar ticket: "no, file mine"
            await reporter.press(reporter.payload(P.SIMILAR_FILE))
            verbs = {b.payload.split(":")[0] for b in reporter.buttons()}
        if P.DRAFT_UNSURE in verbs and not self.triaged:
            # The first reporter offered the top three says "not sure": coordinators triage it.
            self.triaged = True
            await reporter.press(reporter.payload(P.DRAFT_UNSURE))
        elif P.DRAFT_FILE in verbs:
            await reporter.press(reporter.payload(P.DRAFT_FILE))
        else:  # low confidence: the reporter picks the first of the top three
            picks = [b.payload for b in reporter.buttons() if b.payload.startswith(P.DRAFT_PICK)]
            if not picks:
                self.actions_failed += 1
                return
            await reporter.press(picks[0])
        ref = next((w.strip(".,:;") for w in reporter.text.split() if w.startswith("HL-")), None)
        if ref is None:
            self.actions_failed += 1
            return
        ticket = await self._ticket(ref)
        group = await self._group_code(ticket.group_id)
        case = _Case(ref=ref, plan=self._plan(group), reporter=reporter, group=group)
        self.cases.append(case)
        if ticket.needs_triage:
            self.later(0.3, lambda: self.triage(case, item["label"]))
            return
        self._schedule(case)

    def _plan(self, group: str) -> str:
        roll = self.rng.random()
        if group == "mof":  # an overloaded group: the demo's red alert
            return "stalled" if roll < 0.55 else "slow"
        for plan, share in (("smooth", 0.42), ("info", 0.16), ("slow", 0.14), ("stalled", 0.06),
                            ("extension", 0.10), ("double_extension", 0.03), ("reopen", 0.04)):
            if roll < share:
                return plan
            roll -= share
        return "smooth"

    def _schedule(self, case: _Case) -> None:
        r = self.rng
        plan = case.plan
        if plan == "stalled":
            return
        ack_after = r.uniform(1.2, 2.5) if plan == "slow" else r.uniform(0.05, 0.6)
        self.later(ack_after, lambda: self.staff_say(case, f"/ack {case.ref}"))
        if plan == "info":
            self.later(ack_after + 0.5, lambda: self.staff_say(
                case, f"/ask {case.ref} Đề nghị gửi văn bản và đầu mối liên hệ kỹ thuật."))
            self.later(ack_after + r.uniform(1.5, 3.5), lambda: self.answer(case))
            self.later(ack_after + r.uniform(4.5, 8), lambda: self.resolve(case))
        elif plan in ("extension", "double_extension"):
            self.later(ack_after + 1, lambda: self.staff_say(
                case, f"/update {case.ref} {r.choice(UPDATES)}"))
            self.later(ack_after + 3, lambda: self.request_extension(case, 10))
            self.later(ack_after + 4, lambda: self.decide_extension(case, approve=True))
            if plan == "double_extension":
                self.later(ack_after + 8, lambda: self.request_extension(case, 20))
                self.later(ack_after + 9, lambda: self.decide_extension(case, approve=False))
            self.later(ack_after + r.uniform(11, 16), lambda: self.resolve(case))
        else:
            if r.random() < 0.6:
                self.later(ack_after + 1, lambda: self.staff_say(
                    case, f"/update {case.ref} {r.choice(UPDATES)}"))
            days = r.uniform(9, 18) if plan == "slow" else r.uniform(1.5, 7)
            self.later(ack_after + days, lambda: self.resolve(case))

    async def resolve(self, case: _Case) -> None:
        if not await self._open(case.ref):
            return
        ticket = await self._ticket(case.ref)
        if ticket.state in ("assigned", "reopened"):
            await self.staff_say(case, f"/ack {case.ref}")
        await self.staff_say(case, f"/resolve {case.ref} {self.rng.choice(RESOLUTIONS)}")
        if case.plan == "reopen" and (await self._ticket(case.ref)).reopen_count == 0:
            self.later(0.5, lambda: self.reopen(case))
            return
        roll = self.rng.random()
        if roll < 0.75:
            self.later(self.rng.uniform(0.1, 1.5), lambda: self.confirm(case))
        # otherwise the reporter stays silent and the sweep closes it automatically

    async def confirm(self, case: _Case) -> None:
        ticket = await self._ticket(case.ref)
        if ticket.state != "resolved":
            return
        await case.reporter.press(P.build(P.CONFIRM, case.ref))
        stars = self.rng.choices([5, 4, 3, 2], weights=[5, 4, 2, 1])[0]
        await case.reporter.press(P.build(P.RATE, f"{case.ref}.{stars}"))
        if stars <= 3:
            await case.reporter.say("Xử lý còn chậm, đề nghị rút ngắn thời gian phản hồi.")
        else:
            await case.reporter.press(P.build(P.SKIP, "comment"))

    async def reopen(self, case: _Case) -> None:
        await case.reporter.say(f"/reopen {case.ref} Vấn đề vẫn chưa được giải quyết triệt để.")
        self.later(0.3, lambda: self.staff_say(case, f"/ack {case.ref}"))
        self.later(2.5, lambda: self.resolve(case))

    async def answer(self, case: _Case) -> None:
        if (await self._ticket(case.ref)).state != "waiting_reporter":
            return
        await case.reporter.press(P.build(P.ANSWER, case.ref))
        await case.reporter.say(self.rng.choice(ANSWERS))

    async def request_extension(self, case: _Case, business_days: int) -> None:
        if not await self._open(case.ref):
            return
        ticket = await self._ticket(case.ref)
        target = self.app.calendar.add_business_days(ticket.deadline_at, business_days)
        day = target.astimezone(TZ).strftime("%d/%m/%Y")
        await self.staff_say(case, f"/extend {case.ref} {day} Chờ ý kiến thống nhất của các bộ liên quan")

    async def decide_extension(self, case: _Case, *, approve: bool) -> None:
        async with self.app.uow() as uow:
            ext_id = (await uow.session.execute(
                select(Extension.id).join(Ticket, Ticket.id == Extension.ticket_id)
                .where(Ticket.ref == case.ref, Extension.status == "pending"))).scalar()
        if ext_id is None:
            return
        verb = P.EXT_APPROVE if approve else P.EXT_REFUSE
        await self.rng.choice(self.coordinators).press(P.build(verb, ext_id))

    async def triage(self, case: _Case, label: str) -> None:
        coordinator = self.coordinators[0]
        await coordinator.say("/triage")
        await coordinator.press(P.build(P.TRIAGE, case.ref))
        await coordinator.press(P.build(P.RECATEGORISE_TO, f"{case.ref}.{label}"))
        ticket = await self._ticket(case.ref)
        case.group = await self._group_code(ticket.group_id)
        self._schedule(case)

    async def link_duplicate(self) -> None:
        """A second organisation reports what is already being handled; the coordinator links it."""
        originals = [c for c in self.cases if c.plan in ("smooth", "slow", "info")]
        if not originals:
            return
        original = originals[0]
        other = next(r for r in self.reporters if r is not original.reporter)
        ticket = await self._ticket(original.ref)
        await other.say(ticket.description)
        if P.SIMILAR_FILE in {b.payload.split(":")[0] for b in other.buttons()}:
            # Shown the original, this reporter files anyway; a coordinator links it later.
            await other.press(other.payload(P.SIMILAR_FILE))
        if P.DRAFT_FILE in {b.payload.split(":")[0] for b in other.buttons()}:
            await other.press(other.payload(P.DRAFT_FILE))
        ref = next((w.strip(".,:;") for w in other.text.split() if w.startswith("HL-")), None)
        if ref:
            self.later(0.2, lambda: self.coordinators[1].say(f"/dup {ref} {original.ref}"))

    async def report_then_follow(self, story: int) -> None:
        """An enterprise reports a blocker; days later others report the same problem in other
        words (English, without diacritics), see the first ticket and follow it."""
        first, *others = FOLLOW_STORIES[story % len(FOLLOW_STORIES)]
        reporters = self.rng.sample(self.reporters, 1 + len(others))
        await reporters[0].say(first)
        verbs = {b.payload.split(":")[0] for b in reporters[0].buttons()}
        if P.SIMILAR_FILE in verbs:
            await reporters[0].press(reporters[0].payload(P.SIMILAR_FILE))
        if P.DRAFT_FILE not in {b.payload.split(":")[0] for b in reporters[0].buttons()}:
            self.actions_failed += 1
            return
        await reporters[0].press(reporters[0].payload(P.DRAFT_FILE))
        ref = next((w.strip(".,:;") for w in reporters[0].text.split() if w.startswith("HL-")), None)
        if ref is None:
            self.actions_failed += 1
            return
        ticket = await self._ticket(ref)
        case = _Case(ref=ref, plan="slow", reporter=reporters[0],
                     group=await self._group_code(ticket.group_id))
        self.cases.append(case)
        self._schedule(case)
        for day, (chat, text) in enumerate(zip(reporters[1:], others, strict=True), 1):
            self.later(day, lambda chat=chat, text=text: self.follow(chat, text, ref))

    async def follow(self, chat: ScriptedUser, text: str, ref: str) -> None:
        await chat.say(text)
        offered = [b.payload for b in chat.buttons() if b.payload.startswith(P.SIMILAR_FOLLOW)
                   and b.payload.endswith(ref)]
        if not offered:
            self.actions_failed += 1
            await chat.say("/cancel")
            return
        await chat.press(offered[0])

    async def staff_say(self, case: _Case, text: str) -> None:
        ticket = await self._ticket(case.ref)
        chat = self.staff.get(ticket.assignee_id or -1)
        if chat is None:
            self.actions_failed += 1
            return
        await chat.say(text)

    # --- lookups ---------------------------------------------------------------------------------

    async def _ticket(self, ref: str) -> Ticket:
        async with self.app.uow() as uow:
            ticket = await uow.tickets.by_ref(ref)
            assert ticket is not None
            return ticket

    async def _open(self, ref: str) -> bool:
        return (await self._ticket(ref)).state in ("assigned", "in_progress", "waiting_reporter",
                                                    "reopened", "new")

    async def _group_code(self, group_id: int) -> str:
        async with self.app.uow() as uow:
            group = await uow.people.group_by_id(group_id)
            return group.code if group else "?"

    # --- the clock ---------------------------------------------------------------------------

    async def replay(self, start: datetime, end: datetime) -> None:
        from escalation.scheduler import build_scheduler

        scheduler = build_scheduler(self.app)
        await scheduler.elect()
        day = start.date()
        number = 0
        stories = 0
        while datetime.combine(day, datetime.min.time(), TZ) < end:
            if self.app.calendar.is_working_day(day):
                for _ in range(self.rng.choice([2, 3, 3, 4, 5])):
                    when = datetime.combine(day, datetime.min.time(), TZ) + timedelta(
                        hours=self.rng.uniform(8.2, 16.5))
                    n = number
                    self.at(when, lambda n=n: self.file_report(n))
                    number += 1
            if day.weekday() == 1 and number > 10 and stories < len(FOLLOW_STORIES):
                self.at(datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=9, minutes=30),
                        lambda story=stories: self.report_then_follow(story))
                stories += 1
            if day.weekday() == 2 and number > 20 and not self.duplicate_planned:
                self.duplicate_planned = True
                self.at(datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=11),
                        self.link_duplicate)
            for hour in SWEEP_HOURS:
                self.at(datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=hour, minutes=5),
                        scheduler.run_sweep)
            if day.weekday() == 0:
                self.at(datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=8),
                        lambda: scheduler.run_digest("week"))
            if day.day == self.app.settings.monthly_report_day:
                self.at(datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=8, minutes=30),
                        lambda: scheduler.run_digest("month"))
            day += timedelta(days=1)
        total = (end - start).total_seconds()
        while self.agenda and self.agenda[0][0] <= end:
            when, _, action = heapq.heappop(self.agenda)
            if when > self.clock.now():
                self.clock.set(when)
            await action()
            self.on_progress((when - start).total_seconds() / total, when.astimezone(TZ).strftime("%d/%m"))
        self.clock.set(end)
        await scheduler.run_sweep()
        await scheduler.run_digest("week")


async def _counts(app: App) -> dict[str, int]:
    async with app.uow() as uow:
        s = uow.session

        async def scalar(stmt: object) -> int:
            return int((await s.execute(stmt)).scalar() or 0)  # type: ignore[arg-type]

        out = {
            "tickets": await scalar(select(func.count()).select_from(Ticket)),
            "events": await scalar(select(func.count()).select_from(TicketEvent)),
            "people": await scalar(select(func.count()).select_from(Person)),
            "red_alerts": await scalar(select(func.count()).select_from(GroupAlert)),
            "messages": await scalar(select(func.count()).select_from(OutboxMessage)),
            "extensions": await scalar(select(func.count()).select_from(Extension)),
        }
        for state, n in await s.execute(select(Ticket.state, func.count()).group_by(Ticket.state)):
            out[f"state:{state}"] = n
        for level, n in await s.execute(select(Escalation.level, func.count()).group_by(Escalation.level)):
            out[f"escalation:{level}"] = n
        for kind in ("resolved", "reopened", "duplicate_linked", "recategorised", "rated", "auto_closed",
                     "followed"):
            out[f"event:{kind}"] = await scalar(
                select(func.count()).select_from(TicketEvent).where(TicketEvent.kind == kind))
        return out


async def run_demo(out_dir: Path, *, seed: int = 7, weeks: int = 8,
                   on_progress: Callable[[float, str], None] = lambda f, d: None,
                   classifier_cache_dir: Path | None = None) -> DemoSummary:
    """Replay ``weeks`` weeks ending Monday 23 Nov 2026 08:00 into a fresh database in ``out_dir``."""
    from storage import migrate

    started = time.perf_counter()
    out_dir, database = await asyncio.to_thread(_fresh_database, out_dir)
    url = f"sqlite+aiosqlite:///{database}"
    await asyncio.to_thread(migrate.upgrade, url)
    start = END - timedelta(weeks=weeks)
    clock = ManualClock(start)
    settings = Settings(database_url=url, output_dir=out_dir, daily_report_limit=50,
                        _env_file=None)  # type: ignore[call-arg]
    if classifier_cache_dir is not None:
        settings.classifier_cache_dir = classifier_cache_dir
    app = await open_app(settings, clock)
    try:
        demo = DemoRun(app, clock, seed, on_progress)
        await demo.build_programme()
        await demo.replay(start, END)
        files = await _write_reports(app, out_dir)
        counts = await _counts(app)
    finally:
        await app.close()
    counts["actions_skipped"] = demo.actions_failed
    rows = _summary_rows(counts)
    return DemoSummary(out_dir=out_dir, database=database, files=files, rows=rows,
                       seconds=time.perf_counter() - started, counts=counts)


def _fresh_database(out_dir: Path) -> tuple[Path, Path]:
    """A new, empty demo database: the demo always tells its story from the start."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    database = out_dir / "demo.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return out_dir, database


async def _write_reports(app: App, out_dir: Path) -> list[Path]:
    """The leaders' weekly digest for the last complete week, and the monthly report for October."""
    from hotline.digests import period as periods
    from hotline.digests.data import build_digest_with_inputs
    from hotline.digests.send import parse_audience, render_bundle

    now = app.clock.now()
    leaders = parse_audience("leaders")
    files: list[Path] = []
    for period in (periods.last_complete_week(now, app.settings.timezone),
                   periods.parse_month("2026-10", app.settings.timezone)):
        digest, inputs = await build_digest_with_inputs(app, period)
        bundle = await render_bundle(app, digest, leaders, ["vi", "en"], out_dir, now=now, inputs=inputs)
        files += bundle.files
    return files


def _summary_rows(c: dict[str, int]) -> list[tuple[str, str]]:
    open_states = ("new", "assigned", "in_progress", "waiting_reporter", "reopened")
    return [
        ("people (staff + reporters)", str(c["people"])),
        ("reports filed", str(c["tickets"])),
        ("resolved (events)", str(c.get("event:resolved", 0))),
        ("closed (confirmed or automatically)", str(c.get("state:closed", 0))),
        ("  of which closed automatically", str(c.get("event:auto_closed", 0))),
        ("still open", str(sum(c.get(f"state:{s}", 0) for s in open_states))),
        ("triaged by a coordinator", str(c.get("event:recategorised", 0))),
        ("duplicates linked", str(c.get("event:duplicate_linked", 0))),
        ("reporters who followed an existing kind (or were linked to one)",
         str(c.get("event:followed", 0))),
        ("reopened", str(c.get("event:reopened", 0))),
        ("extension requests", str(c["extensions"])),
        ("escalations reminder / L1 / L2 / L3",
         " / ".join(str(c.get(f"escalation:{x}", 0)) for x in ("reminder", "l1", "l2", "l3"))),
        ("red alerts raised", str(c["red_alerts"])),
        ("ratings", str(c.get("event:rated", 0))),
        ("messages written to the outbox", str(c["messages"])),
        ("ticket events (audit trail)", str(c["events"])),
    ] + ([("scripted actions the engine refused", str(c["actions_skipped"]))]
         if c.get("actions_skipped") else [])
