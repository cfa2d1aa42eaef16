"""Random conversations cannot corrupt a ticket: the property behind SPEC §3/§4 (issue 18).

Hypothesis drives a reporter (on the console channel, where buttons are numbered menus), a
member and a coordinator (on a button channel) through the real engine and database with any
mix of stray digits, emoji, out-of-range choices, commands, taps and real report texts, and
checks after every single event that:

- every event got an answer, and none of them is the "something went wrong" apology;
- every ticket's description, and every draft being written, is a real description
  (``hotline.domain.reports.is_report``);
- an answer to a choice prompt that was not a valid choice (nor a command) changed no ticket,
  no event, no draft and no conversation step.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot import numbered
from bot.console import ConsoleChat
from handlers import choices
from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.deps import App
from hotline.domain.enums import Role
from hotline.domain.reports import is_report
from hotline.i18n import plain, t
from hotline.messages import OutboundMessage
from hotline.services import tickets as ticket_service
from hotline.services.app import open_app
from storage.models import Conversation, Ticket, TicketEvent
from tests.conftest import _truncate, local
from tests.dbutil import scratch_dir
from tests.factories import file, make_reporter, make_staff

REPORTS = [
    "Chưa có nghị định hướng dẫn Luật Dữ liệu",
    "Chua co nghi dinh huong dan Luat Du lieu nen chua chia se duoc",
    "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp",
    "Mạng truyền số liệu chuyên dùng ở huyện bị gián đoạn từ tháng trước",
    "No decree guides the Data Law yet, so we cannot share our data",
    "The provincial network has been down for two weeks",
]
NOISE = ["ok", "OK", "vâng", "yes", "?", "...", "-1", "1.5", "[3]", "x", "👍", "👍👍👍", "🙏",
         "❤️", "😀 😀", "5⭐", "0", "00", "Gửi", "hủy", "English"]
COMMANDS = ["/help", "/status", "/mine", "/queue", "/cancel", "/report", "/lang", "/lang fr",
            "/triage", "/rate", "/rate {t2}", "/rate {t2} 7", "/rate {t2} 4", "/status {t1}",
            "/status {t2}", "/ticket {t1}", "/recat {t1} foo", "/priority {t1} urgent",
            "/extend {t1}", "/extend {t1} 31/12/2026", "/ack {t1}", "/add {t1}", "/reopen {t2}"]

ACTORS = ("rep", "mem", "coord")
event_strategy = st.one_of(
    st.tuples(st.just("type"), st.integers(0, 120).map(str)),
    st.tuples(st.just("type"), st.sampled_from(NOISE)),
    st.tuples(st.just("type"), st.sampled_from(REPORTS)),
    st.tuples(st.just("type"), st.sampled_from(COMMANDS)),
    st.tuples(st.just("press"), st.integers(0, 14).map(str)),
    st.tuples(st.just("press"), st.integers(0, 3).map(str)),
)
#: A round: somebody reaches a prompt (the opener), then anything at all happens next.
round_strategy = st.tuples(st.sampled_from(ACTORS), st.integers(0, 13),
                           st.lists(event_strategy, min_size=1, max_size=5))


def opener(actor: str, index: int) -> list[tuple[str, str]]:
    """Events that bring ``actor`` to a prompt: a report's draft, the stars, a ticket's
    actions (the ``index``-th button: recategorise, priority, reassign, extend, update...)."""
    if actor == "rep":
        choices_ = [("type", REPORTS[index % len(REPORTS)]), ("type", "/rate {t2}"),
                    ("type", "/status {t2}"), ("type", "/report")]
        return [choices_[index % len(choices_)]]
    return [("type", "/ticket {t1}"), ("press", str(index))]


@dataclass
class World:
    app: App
    engine: Engine
    console: ConsoleChat
    staff: dict[str, ScriptedUser]
    refs: dict[str, str]
    last: dict[str, list[OutboundMessage]] = field(default_factory=dict)


async def _setup(app: App) -> World:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    engine = Engine(app, intake=[numbered.intake])
    reporter, contact = await make_reporter(app, language="vi")
    member, member_contact = await make_staff(app, Role.MEMBER, "mps", channel="telegram")
    _, coord_contact = await make_staff(app, Role.COORDINATOR, channel="telegram", language="en")
    working = await file(app, reporter, contact, REPORTS[2])
    done = await file(app, reporter, contact, REPORTS[0])
    async with app.uow() as uow:
        person = await uow.people.get(member.id)
        assert person is not None
        ticket = await uow.tickets.get(done.id)
        assert ticket is not None
        if ticket.assignee_id != person.id:
            await ticket_service.reassign(uow, app, ticket, person, person)
        await ticket_service.acknowledge(uow, app, ticket, person)
        await ticket_service.resolve(uow, app, ticket, person, "Đã ban hành hướng dẫn tạm thời")
        await uow.commit()
    out = io.StringIO()
    console = ConsoleChat(app, contact.external_id, out, lang="vi", engine=engine)
    staff = {"mem": ScriptedUser(engine, member_contact.external_id, channel="telegram"),
             "coord": ScriptedUser(engine, coord_contact.external_id, channel="telegram")}
    return World(app, engine, console, staff, {"t1": working.ref, "t2": done.ref})


async def _tickets(app: App) -> tuple[list[Any], int]:
    async with app.uow() as uow:
        rows = (await uow.session.execute(
            select(Ticket.ref, Ticket.description, Ticket.state, Ticket.category, Ticket.priority,
                   Ticket.assignee_id, Ticket.rating, Ticket.rating_comment, Ticket.deadline_at)
            .order_by(Ticket.id))).all()
        events = int((await uow.session.execute(
            select(func.count()).select_from(TicketEvent))).scalar_one())
        return [tuple(r) for r in rows], events


async def _conversation(app: App, channel: str, external_id: str) -> tuple[str, dict[str, Any]]:
    async with app.uow() as uow:
        row = (await uow.session.execute(
            select(Conversation.step, Conversation.data).where(
                Conversation.channel == channel, Conversation.external_id == external_id))).first()
        return (row[0], dict(row[1] or {})) if row is not None else ("idle", {})


async def _drafts(app: App) -> list[str]:
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(Conversation.data))).scalars().all()
        return [str(d["text"]) for d in rows if d and d.get("text") and "draft" in d]


#: The prompts that offer choices (SPEC: they accept a choice or a command, nothing else).
#: Listed here rather than read from the engine, so a prompt that stops being guarded fails.
CHOICE_STEPS = frozenset({"reg_lang", "reg_kind", "report_confirm", "report_pick", "report_similar",
                          "report_add_confirm", "rate_stars", "recat_pick", "priority_pick",
                          "reassign_group", "reassign_person"})


def test_every_choice_prompt_is_guarded() -> None:
    from handlers.engine import build_router

    steps = build_router().steps
    assert {name for name, step in steps.items() if step.handle is None} == CHOICE_STEPS


async def _valid_choice(world: World, actor: str, text: str) -> bool:
    """Whether ``text`` is a command or names a choice the actor has on screen."""
    if text.strip().startswith("/"):
        return True
    if actor == "rep":
        async with world.app.uow() as uow:
            menu = await numbered.remembered_menu(uow, "console", world.console.user)
        labels = [label for label, _ in menu]
    else:
        labels = [b.label for b in choices.offered(world.last.get(actor, []))]
    number = choices.number_of(text)
    if number is not None:
        return 1 <= number <= len(labels)
    key = choices.label_key(text)
    return bool(key) and any(choices.label_key(label) == key for label in labels)


async def _event(world: World, actor: str, kind: str, value: str) -> tuple[str, list[Any]]:
    """Send one event; returns what was typed (or "" for a tap) and the replies."""
    value = value.format(**world.refs)
    if actor == "rep":
        if kind == "press":
            value = str(int(value) + 1)  # the console's way of pressing: the line's number
        replies = await world.console.send(value)
        return value, replies
    user = world.staff[actor]
    buttons = choices.offered(world.last.get(actor, []))
    if kind == "press":
        if not buttons:
            return "", []
        replies = await user.press(buttons[int(value) % len(buttons)].payload)
        world.last[actor] = replies
        return "", replies
    replies = await user.say(value)
    world.last[actor] = replies
    return value, replies


async def _run(rounds: list[tuple[str, int, list[tuple[str, str]]]], url: str, pg: bool,
               folder: Path) -> None:
    clock = ManualClock(local(2026, 12, 7, 9, 0))
    cfg = Settings(database_url=url, output_dir=folder, classifier_cache_dir=folder / "cls",
                   _env_file=None)  # type: ignore[call-arg]
    if pg:
        await _truncate(url)
    app = await open_app(cfg, clock, create_tables=not pg)
    apology = {plain(str(t("error.generic", lang))) for lang in ("vi", "en")}
    try:
        world = await _setup(app)
        steps = [(actor, event) for actor, index, events in rounds
                 for event in [*opener(actor, index), *events]]
        for actor, (kind, value) in steps:
            channel = "console" if actor == "rep" else "telegram"
            external = world.console.user if actor == "rep" else world.staff[actor].user_id
            step_before, data_before = await _conversation(app, channel, external)
            tickets_before = await _tickets(app)
            typed = value.format(**world.refs) if kind == "type" else ""
            valid = kind == "press" or await _valid_choice(world, actor, typed)
            if actor == "rep" and kind == "press":
                valid = await _valid_choice(world, actor, str(int(value) + 1))
            sent, replies = await _event(world, actor, kind, value)
            if actor != "rep" and kind == "press" and not sent and not replies:
                continue  # nothing on screen to tap
            what = f"{actor} {kind} {sent!r} at {step_before}"
            assert replies, f"no answer to {what}"
            texts = [plain(m.text) for m in replies]
            assert not any(a in text for text in texts for a in apology), f"failure on {what}"
            now_tickets = await _tickets(app)
            for ticket in now_tickets[0]:
                assert is_report(ticket[1]), f"ticket {ticket[0]} without a description: {what}"
            for draft in await _drafts(app):
                assert is_report(draft), f"draft {draft!r} after {what}"
            if step_before in CHOICE_STEPS and not valid:
                assert now_tickets == tickets_before, f"a ticket changed on {what}"
                assert await _conversation(app, channel, external) == (
                    step_before, data_before), f"the conversation changed on {what}"
            clock.advance(timedelta(minutes=1))
    finally:
        await app.close()


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(round_strategy, min_size=4, max_size=10))
def test_random_conversations_keep_tickets_real(
    rounds: list[tuple[str, int, list[tuple[str, str]]]], pg_url: str | None, tmp_path: Path,
    classifier_cache: Path,
) -> None:
    folder = scratch_dir(tmp_path)
    try:
        (folder / "cls").symlink_to(classifier_cache, target_is_directory=True)
        url = pg_url or f"sqlite+aiosqlite:///{folder / 'c.db'}"
        asyncio.run(_run(rounds, url, pg_url is not None, folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
