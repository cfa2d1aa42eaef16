"""Load test: ``hotline run --webhook --workers 2`` on PostgreSQL, then a check of every effect.

What runs: a fresh PostgreSQL database (Alembic head, as ``hotline db upgrade`` leaves it) with
registered reporters and three members per owner group; the real product command
``hotline run --webhook --workers W`` (W forked workers sharing the port with SO_REUSEPORT,
each with its engine, outbox dispatcher and scheduler; the web pages off unless ``--web``);
and, in this process (separate from the workers), the fake Telegram Bot API the workers talk
to (``tests/fakes/telegram_api.py``: getMe, setMyCommands, sendMessage, answerCallbackQuery)
plus the load generator, posting Telegram updates with the secret token header over at most
``--concurrency`` connections.

Each user acts like a person in a chat, one thing at a time, reading the bot's answers: a
report is a text message, then a tap on "send" in the draft the bot sent back (or, when the
classifier was not sure, on its first suggested category); then ``/mine``, and ``/status`` of
a ticket the bot confirmed. Many users are in flight at once (``--sessions``), so the
connections stay busy while users wait for their answers.

Two latencies per update: **POST to 200** -- the webhook answers once the raw update is
committed to the inbox (``bot.inbox``: one insert), so this is the time to *recorded*, what
Telegram waits for; and **POST to reply** -- until the bot's answer to that update reached the
fake Bot API: processed by the engine (its effect committed) and sent by the outbox dispatcher,
the end-to-end time a person sees.

``--workers 1,2`` runs the whole test once per worker count (each on a fresh database) and
prints the throughput ratio of the last to the first (issue 23: 2 workers >= 1.3 x 1).

Baseline, measured in the same run with the same workers and load tool: requests refused by
the secret guard (wrong token, 403; no parsing, no database): what the HTTP stack of the same
processes serves.

Verification, afterwards, in the database: the inbox is empty (everything recorded was
processed); every update id recorded exactly once in ``inbound_updates`` (none missing, none
extra); exactly one ticket per report (found by the
report's unique marker, filed for its own reporter); per reporter chat exactly the outbox
replies its updates call for (draft, filing confirmation, /mine, /status); one assignment
notice per ticket to members. The outbox dispatcher's pace limits are lifted (the fake is not
Telegram): this measures the inbound path and checks the outbound rows.

Defaults: 50,000 updates from 5,000 users (about ten minutes at ~100 updates/s); develop with
``--updates 2000 --users 200``. Skips with a message when PostgreSQL is not reachable
(``HOTLINE_BENCH_PG_URL``, default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``).

``--processing process`` runs each worker's inbox processor in a process of its own
(``HOTLINE_INBOX_PROCESSING``; the default, ``thread``, runs it in the worker); its figures are
named "load_webhook (process)".

Usage: python bench/load_webhook.py [--updates N] [--users U] [--workers W[,W...]] [--concurrency C]
       [--sessions S] [--web] [--processing thread|process] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from sqlalchemy import func, select

from bench.common import (
    Result,
    machine,
    pop_json_arg,
    postgres_available,
    print_table,
    temp_database,
    write_results,
)
from hotline.clock import ManualClock
from hotline.config import Settings
from hotline.deps import App
from hotline.domain import payloads as P
from hotline.domain.enums import OrgKind, Role
from hotline.services import people
from hotline.services.app import open_app
from storage import migrate
from storage.models import Contact, InboundUpdate, InboxEntry, OutboxMessage, Ticket
from tests.fakes.telegram_api import FakeTelegramServer, SentMessage
from tests.procfs import children_of, stat_fields

SECRET = "load-Webhook_secret"
FIRST_USER = 5_000_001
FIRST_MEMBER = 9_000_001
MEMBERS_PER_GROUP = 3
REPLY_TIMEOUT = 120.0
TEXTS = [
    "Dữ liệu dân cư của tỉnh chưa được chia sẻ cho doanh nghiệp, hồ sơ bị trả lại",
    "Mạng cáp quang tại khu công nghệ cao chưa được kết nối, nền tảng số không truy cập được",
    "Provincial land data is not shared with the national data platform",
    "Thủ tục cấp phép vẫn yêu cầu bản giấy dù đã nộp trực tuyến",
    "Chua co huong dan ve chu ky so cho hop dong dien tu voi co quan nha nuoc",
]
REF = re.compile(r"\b[A-Z]{2,4}-\d{4}-\d{4,}\b")
#: Outbox rows each action leaves for the reporter's own chat ("similar": the bot showed
#: similar tickets first and the user chose "file mine", one more tap and answer).
REPLIES = {"report": 2, "mine": 1, "status": 1, "similar": 1}


def plan(budget: int) -> list[str]:
    """One user's actions for ``budget`` updates: mostly reports (two updates each), then
    /mine and /status once the user has a ticket."""
    if budget <= 1:
        return ["mine"] * budget
    if budget == 2:
        return ["report"]
    if budget == 3:
        return ["report", "status"]
    reports = (budget - 2) // 2
    extra = budget - 2 * reports  # 2 or 3
    return ["report"] * reports + ["mine", "status"] + ["mine"] * (extra - 2)


@dataclass
class Load:
    """What the generator did and saw."""

    latencies: list[float] = field(default_factory=list)
    #: POST start -> the bot's reply to that update at the fake Bot API.
    replies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    update_ids: list[int] = field(default_factory=list)
    markers: dict[str, int] = field(default_factory=dict)  # report marker -> user id
    actions: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Generator:
    def __init__(self, fake: FakeTelegramServer, url: str, concurrency: int) -> None:
        self.fake, self.url = fake, url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        self.slots = asyncio.Semaphore(concurrency)  # latency counts from a free connection on
        self.load = Load()

    async def close(self) -> None:
        await self.session.close()

    async def post(self, update: dict[str, Any], secret: str = SECRET) -> float:
        """POST like Telegram; returns when the request started (for the reply latency)."""
        body = json.dumps(update).encode()
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
        async with self.slots:
            start = time.perf_counter()
            async with self.session.post(self.url, data=body, headers=headers) as response:
                await response.read()
            self.load.latencies.append(time.perf_counter() - start)
        self.load.statuses[response.status] += 1
        if secret == SECRET:
            self.load.update_ids.append(int(update["update_id"]))
        return start

    async def reply(self, started: float, chat: int, n: int) -> SentMessage:
        """The bot's n-th message to ``chat``, noting how long after ``started`` it came."""
        sent = await self.nth(chat, n)
        self.load.replies.append(time.perf_counter() - started)
        return sent

    async def nth(self, chat: int, n: int) -> SentMessage:
        """The bot's n-th message to ``chat`` (1-based), once it reached the fake."""
        sent = await self.fake.wait_for_sent(chat, n, within=REPLY_TIMEOUT)
        if len(self.fake.calls) > 2000:  # the fake logs every call; the load does not need it
            del self.fake.calls[:]
        return sent[n - 1]

    async def user_session(self, uid: int, actions: list[str]) -> None:
        fake, load = self.fake, self.load
        user = fake.user(uid, f"User{uid}", None, username=None, language_code="vi")
        seen = len(fake.sent_messages(uid))
        refs: list[str] = []
        try:
            for k, action in enumerate(actions):
                load.actions[uid][action] += 1
                if action == "report":
                    marker = f"#u{uid}r{k}"
                    load.markers[marker] = uid
                    started = await self.post(fake.text_update(
                        f"{TEXTS[(uid + k) % len(TEXTS)]} ({marker})", user=user))
                    seen += 1
                    draft = await self.reply(started, uid, seen)
                    file_mine = _file_mine_button(draft)
                    if file_mine is not None:  # similar tickets shown first: "no, file mine"
                        load.actions[uid]["similar"] += 1
                        started = await self.post(fake.callback_update(file_mine, message=draft,
                                                                       user=user))
                        seen += 1
                        draft = await self.reply(started, uid, seen)
                    started = await self.post(fake.callback_update(_send_button(draft),
                                                                   message=draft, user=user))
                    seen += 1
                    filed = await self.reply(started, uid, seen)
                    found = REF.findall(filed.text or "")
                    if not found:
                        raise LookupError(f"no ticket ref in the filing reply {filed.text!r}")
                    refs.append(found[0])
                elif action == "mine":
                    started = await self.post(fake.command_update("mine", user=user))
                    seen += 1
                    await self.reply(started, uid, seen)
                else:
                    ref = refs[-1] if refs else "HL-2026-000000"
                    started = await self.post(fake.command_update("status", ref, user=user))
                    seen += 1
                    card = await self.reply(started, uid, seen)
                    if ref not in (card.text or ""):
                        raise LookupError(f"/status {ref} answered {card.text!r}"[:200])
        except Exception as error:  # counted, and the verification will show what is missing
            load.failures.append(f"user {uid}: {type(error).__name__}: {error}"[:300])

    async def run(self, scripts: dict[int, list[str]], sessions: int) -> None:
        queue = iter(scripts.items())

        async def lane() -> None:
            for uid, actions in queue:
                await self.user_session(uid, actions)

        start = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(sessions)))
        self.load.seconds = time.perf_counter() - start


def _file_mine_button(message: SentMessage) -> str | None:
    found = [data for row in message.buttons for _, data in row
             if data.startswith(P.SIMILAR_FILE + ":")]
    return found[0] if found else None


def _send_button(draft: SentMessage) -> str:
    """"Send" on a confident draft, else the first suggested category (both file a ticket)."""
    payloads = [data for _, data in (b for row in draft.buttons for b in row)]
    for verb in (P.DRAFT_FILE, P.DRAFT_PICK):
        found = [p for p in payloads if p.startswith(verb + ":")]
        if found:
            return found[0]
    raise LookupError(f"no draft button in {payloads}")


# --- setup --------------------------------------------------------------------------------------
async def setup(url: str, users: list[int]) -> list[int]:
    """Reporters (one organisation each) and members; returns the members' chat ids."""
    await asyncio.to_thread(migrate.upgrade, url)
    clock = ManualClock(datetime(2026, 12, 7, 9, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")))
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    app = await open_app(settings, clock)
    members: list[int] = []
    try:
        async with app.uow() as uow:
            chat = FIRST_MEMBER
            for group in app.taxonomy.groups:
                for _ in range(MEMBERS_PER_GROUP):
                    issued = await people.create_invite(uow, app, Role.MEMBER, group)
                    contact = await people.touch_contact(uow, app, "telegram", str(chat), str(chat),
                                                         f"Member {chat}")
                    await people.join(uow, app, contact, issued.code)
                    members.append(chat)
                    chat += 1
            await uow.commit()
        for start in range(0, len(users), 500):
            async with app.uow() as uow:
                for uid in users[start:start + 500]:
                    contact = await people.touch_contact(uow, app, "telegram", str(uid), str(uid),
                                                         f"User{uid}")
                    await people.register_reporter(
                        uow, app, contact, organisation_name=f"Công ty {uid}",
                        kind=OrgKind.ENTERPRISE, contact_name=f"User{uid}")
                await uow.commit()
        app.classifier().classify("khởi động")  # trained once into the cache the workers load
    finally:
        await app.close()
    return members


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants: ``hotline run``, its forked workers (with more than
    one) and each worker's inbox processor process (PostgreSQL)."""
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children_of(pid))
    return tree


def serving_workers(root: int, workers: int) -> list[int]:
    """The processes that answer webhooks: the forked workers, or ``hotline run`` itself when
    it runs one worker (its only child is then its inbox processor)."""
    return children_of(root) if workers > 1 else [root]


def workers_cpu(parent: int) -> float:
    """CPU seconds used so far by ``hotline run`` (``parent``) and every process under it, from
    /proc (Linux): workers and their inbox processors."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for pid in process_tree(parent):
        fields = stat_fields(pid)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def worker_rss_mb(worker: int) -> float:
    """Peak RSS of a worker plus that of its inbox processor process: an upper bound of what
    one worker costs (the processor is forked, so pages they still share count twice)."""
    return peak_rss_mb(worker) + sum(peak_rss_mb(child) for child in children_of(worker))


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process (``VmHWM``), in MiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def first_update_served(url: str, fake: FakeTelegramServer, uid: int,
                              folder: Path) -> float:
    """Seconds from starting ``hotline run --webhook`` (one worker, the database already
    migrated and populated) until the reply to the first update reached the fake Bot API:
    imports, connecting, getMe/setMyCommands, binding, then one /help through inbox and engine."""
    user = fake.user(uid, f"User{uid}", None, username=None, language_code="vi")
    before = len(fake.sent_messages(uid))
    started = time.perf_counter()
    proc, webhook, _ = await start_workers(url, fake, 1, False, folder, wait=False)
    update = fake.command_update("help", user=user)
    body = json.dumps(update).encode()
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    try:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.post(webhook, data=body, headers=headers) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                if proc.returncode is not None or time.perf_counter() - started > 120:
                    raise RuntimeError("hotline run did not serve an update within 120 s")
                await asyncio.sleep(0.02)
        await fake.wait_for_sent(uid, before + 1, within=60)
        return time.perf_counter() - started
    finally:
        await stop_workers(proc)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_workers(url: str, fake: FakeTelegramServer, workers: int, web: bool,
                        folder: Path, *, wait: bool = True
                        ) -> tuple[asyncio.subprocess.Process, str, Path]:
    port = free_port()
    env = {
        **os.environ,
        "HOTLINE_DATABASE_URL": url,
        "HOTLINE_TELEGRAM_TOKEN": fake.token,
        "HOTLINE_TELEGRAM_API_URL": fake.base_url,
        "HOTLINE_WEBHOOK_SECRET": SECRET,
        "HOTLINE_WEBHOOK_HOST": "127.0.0.1",
        "HOTLINE_WEBHOOK_PORT": str(port),
        "HOTLINE_DAILY_REPORT_LIMIT": "1000000",
        "HOTLINE_OUTBOX_PER_CHAT_INTERVAL": "0",
        "HOTLINE_OUTBOX_GLOBAL_PER_SECOND": "100000",
        "HOTLINE_OUTBOX_GROUP_PER_MINUTE": "100000",
    }
    hotline = Path(sys.executable).with_name("hotline")
    command = [str(hotline), "run", "--webhook", "--workers", str(workers), "--log-level", "WARNING"]
    if not web:
        command.append("--no-web")
    log = folder / "workers.log"
    handle = log.open("wb")
    proc = await asyncio.create_subprocess_exec(*command, cwd=folder, env=env, stdout=handle,
                                                stderr=asyncio.subprocess.STDOUT)
    handle.close()
    url_ = f"http://127.0.0.1:{port}/telegram/webhook"
    if not wait:
        return proc, url_, log
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"hotline run exited ({proc.returncode}): {log.read_text()[-2000:]}")
        # Every worker called getMe then setMyCommands before it listens; then probe the port.
        if sum(1 for c in fake.calls if c.method == "getMe") >= workers:
            try:
                async with aiohttp.ClientSession() as session, session.post(url_, data=b"{}") as r:
                    if r.status == 403:
                        await asyncio.sleep(1.0)  # let the other worker(s) finish binding
                        return proc, url_, log
            except aiohttp.ClientConnectionError:
                pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"workers did not start within 120 s: {log.read_text()[-2000:]}")


async def stop_workers(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return int(proc.returncode or 0)


# --- verification -------------------------------------------------------------------------------
async def verify(url: str, load: Load, members: list[int]) -> tuple[bool, list[str]]:
    """Every update exactly once, every report exactly its ticket and replies."""
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    app: App = await open_app(settings, sync_groups=False)
    lines: list[str] = []
    ok = True
    try:
        async with app.sessions() as s:
            seen = Counter((await s.execute(
                select(InboundUpdate.update_id).where(InboundUpdate.channel == "telegram")
            )).scalars())
            tickets = (await s.execute(
                select(Ticket.description, Contact.external_id)
                .join(Contact, Contact.id == Ticket.contact_id, isouter=True)
            )).all()
            outbox = Counter((await s.execute(select(OutboxMessage.chat_id))).scalars())
            unsent = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.status != "sent"))
            waiting = await s.scalar(select(func.count()).select_from(InboxEntry))
    finally:
        await app.close()

    ok &= not waiting
    lines.append(f"inbox: {waiting} recorded updates left unprocessed -> "
                 f"{'OK' if not waiting else 'FAILED'}")
    posted = Counter(str(i) for i in load.update_ids)
    missing = set(posted) - set(seen)
    extra = set(seen) - set(posted)
    twice = [i for i, n in posted.items() if n > 1]
    good = not missing and not extra and not twice and sum(seen.values()) == len(posted)
    ok &= good
    lines.append(f"inbound_updates: {sum(seen.values()):,} rows for {len(posted):,} updates posted; "
                 f"missing {len(missing)}, extra {len(extra)}, posted twice {len(twice)} "
                 f"-> {'OK' if good else 'FAILED'}")

    found: Counter[str] = Counter()
    wrong_owner = 0
    for description, external in tickets:
        match = re.search(r"\((#u\d+r\d+)\)", description or "")
        if match:
            found[match.group(1)] += 1
            if str(load.markers.get(match.group(1))) != str(external):
                wrong_owner += 1
    missing_t = [m for m in load.markers if found[m] == 0]
    dup_t = [m for m, n in found.items() if n > 1]
    stray = [m for m in found if m not in load.markers]
    good = not missing_t and not dup_t and not stray and not wrong_owner and \
        len(tickets) == len(load.markers)
    ok &= good
    lines.append(f"tickets: {len(tickets):,} for {len(load.markers):,} reports; missing "
                 f"{len(missing_t)}, duplicated {len(dup_t)}, unexpected {len(stray)}, filed for "
                 f"someone else {wrong_owner} -> {'OK' if good else 'FAILED'}")

    bad_chats = []
    for uid, actions in load.actions.items():
        expected = sum(REPLIES[a] * n for a, n in actions.items())
        if outbox[str(uid)] != expected:
            bad_chats.append((uid, expected, outbox[str(uid)]))
    replies = sum(outbox[str(uid)] for uid in load.actions)
    expected_total = sum(REPLIES[a] * n for c in load.actions.values() for a, n in c.items())
    notices = sum(outbox[str(m)] for m in members)
    good = not bad_chats and notices == len(tickets)
    ok &= good
    lines.append(f"outbox: {replies:,} replies to reporters (expected {expected_total:,}; chats "
                 f"off {len(bad_chats)}{', e.g. ' + str(bad_chats[:3]) if bad_chats else ''}), "
                 f"{notices:,} notices to members for {len(tickets):,} tickets, "
                 f"{unsent} rows not yet sent -> {'OK' if good else 'FAILED'}")
    if load.failures:
        ok = False
        lines.append(f"generator: {len(load.failures)} users stopped early, e.g. {load.failures[:3]}")
    bad_status = {k: v for k, v in load.statuses.items() if k != 200}
    if bad_status:
        ok = False
        lines.append(f"HTTP answers other than 200: {bad_status}")
    return ok, lines


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- main ---------------------------------------------------------------------------------------
async def run(args: argparse.Namespace, *, measure_startup: bool = True) -> list[Result]:
    n_users = min(args.users, max(1, args.updates))
    users = list(range(FIRST_USER, FIRST_USER + n_users))
    warm_users = list(range(FIRST_USER + n_users, FIRST_USER + n_users + args.sessions))
    budget, rest = divmod(args.updates, n_users)
    scripts = {uid: plan(budget + (1 if i < rest else 0)) for i, uid in enumerate(users)}
    scripts = {uid: actions for uid, actions in scripts.items() if actions}
    print(f"load test on {machine()}: {args.updates:,} updates from {n_users:,} users, "
          f"{args.workers} workers (inbox processor: {args.processing}), {args.concurrency} "
          f"connections, {args.sessions} users in flight", flush=True)
    started = time.perf_counter()
    async with temp_database("postgres") as url, FakeTelegramServer() as fake:
        members = await setup(url, users + warm_users)
        print(f"setup: {len(users) + len(warm_users):,} reporters, {len(members)} members "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            proc, webhook, log = await start_workers(url, fake, args.workers, args.web, Path(folder))
            gen = Generator(fake, webhook, args.concurrency)
            try:
                # Warm-up (not timed, but verified): connections, caches, prepared statements.
                await gen.run({uid: ["report"] for uid in warm_users}, args.sessions)
                # Baseline: the same processes and tool, requests refused by the secret guard.
                base = Load()
                gen.load, saved = base, gen.load
                n_base = min(max(args.updates // 4, 200), 5000)
                bogus = [fake.text_update("x", user=fake.user(1, "X", None)) for _ in range(n_base)]
                sem_iter = iter(bogus)

                async def lane() -> None:
                    for update in sem_iter:
                        await gen.post(update, secret="wrong-secret")

                t0 = time.perf_counter()
                await asyncio.gather(*(lane() for _ in range(args.concurrency)))
                base.seconds = time.perf_counter() - t0
                gen.load = saved
                if set(base.statuses) != {403}:
                    raise RuntimeError(f"baseline answers: {dict(base.statuses)}")
                # The load.
                timed = Load()
                warm, gen.load = gen.load, timed
                cpu = workers_cpu(proc.pid)
                await gen.run(scripts, args.sessions)
                cpu = workers_cpu(proc.pid) - cpu
                print(f"load: {len(timed.latencies):,} updates in {timed.seconds:.1f} s", flush=True)
                await asyncio.sleep(2.0)  # the last replies leave the outbox
                rss = max(worker_rss_mb(pid) for pid in serving_workers(proc.pid, args.workers))
            finally:
                await gen.close()
                code = await stop_workers(proc)
            worker_log = log.read_text(errors="replace")
        everything = Load(update_ids=warm.update_ids + timed.update_ids,
                          markers={**warm.markers, **timed.markers},
                          failures=warm.failures + timed.failures,
                          statuses=warm.statuses + timed.statuses)
        for source in (warm.actions, timed.actions):
            for uid, counts in source.items():
                everything.actions[uid].update(counts)
        ok, lines = await verify(url, everything, members)
        # Start-up, after the verification (its /help reply is not part of the load's count).
        startup: float | None = None
        if measure_startup:
            with tempfile.TemporaryDirectory() as folder:
                startup = await first_update_served(url, fake, warm_users[0], Path(folder))
    if code != 0:
        ok = False
        lines.append(f"hotline run exited with {code}: {worker_log[-1500:]}")
    errors = [line for line in worker_log.splitlines() if " ERROR " in line or "Traceback" in line]
    if errors:
        lines.append(f"worker log: {len(errors)} error lines, e.g. {errors[:2]}")

    rate = len(timed.latencies) / timed.seconds
    base_rate = len(base.latencies) / base.seconds
    ms = [x * 1e3 for x in timed.latencies]
    p50, p95, p99 = (percentile(ms, q) for q in (0.5, 0.95, 0.99))
    reply_ms = [x * 1e3 for x in timed.replies]
    r50, r95, r99 = (percentile(reply_ms, q) for q in (0.5, 0.95, 0.99))
    load_avg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print_table(
        f"Webhook load: hotline run --webhook --workers {args.workers}, PostgreSQL, loopback "
        f"(load average at the end {load_avg})",
        ["updates", "users", "workers", "connections", "updates/s",
         "POST->200 (recorded) p50 / p95 / p99 / max ms", "POST->reply p50 / p95 / p99 ms",
         "worker CPU ms/update", "peak RSS of a worker + its processor MiB",
         "start-up to first update served s",
         "baseline 403 req/s", "ratio", "verified"],
        [[f"{len(ms):,}", f"{n_users:,}", args.workers, args.concurrency, f"{rate:,.0f}",
          f"{p50:.0f} / {p95:.0f} / {p99:.0f} / {max(ms):.0f}",
          f"{r50:.0f} / {r95:.0f} / {r99:.0f}",
          f"{cpu / len(ms) * 1e3:.1f}", f"{rss:.0f}",
          "—" if startup is None else f"{startup:.2f}", f"{base_rate:,.0f}",
          f"{rate / base_rate:.3f}", "yes" if ok else "NO"]],
    )
    met = p99 <= 300 and p95 <= 150
    print(f"targets (issue 23): POST->recorded p99 <= 300 ms and p95 <= 150 ms: "
          f"{'met' if met else 'NOT met'} (p95 {p95:.0f}, p99 {p99:.0f})")
    print("verification:")
    for line in lines:
        print("  " + line)
    print(f"verification {'PASSED' if ok else 'FAILED'}; mean latency {statistics.fmean(ms):.0f} ms; "
          f"total {time.perf_counter() - started:.0f} s", flush=True)
    name = bench_name(args.processing)
    size = f"{len(ms):,} updates, {n_users:,} users, {args.workers} workers, {args.concurrency} conn"
    w = f"{args.workers} worker{'s' if args.workers > 1 else ''}: "
    return [
        Result(name, "postgres", w + "updates/s", rate, "updates/s", base_rate, rate / base_rate,
               baseline_label="403 from the secret guard, req/s", note=size),
        Result(name, "postgres", w + "POST->recorded p50", p50, "ms", None, None, note=size),
        Result(name, "postgres", w + "POST->recorded p95", p95, "ms", None, None,
               target="<= 150 ms", met=p95 <= 150, note=size),
        Result(name, "postgres", w + "POST->recorded p99", p99, "ms", None, None,
               target="<= 300 ms", met=p99 <= 300, note=size),
        Result(name, "postgres", w + "POST->reply p50", r50, "ms", None, None, note=size),
        Result(name, "postgres", w + "POST->reply p99", r99, "ms", None, None, note=size),
        Result(name, "postgres", w + "worker CPU per update", cpu / len(ms) * 1e3, "ms", None,
               None, note=size),
        Result(name, "postgres", w + "peak RSS of one worker and its inbox processor after the load",
               rss, "MiB", None, None, note=size),
        *([] if startup is None else [
            Result(name, "postgres", "start-up: hotline run to first update served", startup, "s",
                   None, None, note="one worker, database migrated and populated; /help through "
                   "inbox, engine and outbox to the fake Bot API")]),
        Result(name, "postgres", "updates with exactly their effect", 100.0 if ok else 0.0, "%",
               None, None, target="100 %", met=ok, note="; ".join(lines)[:500]),
    ]


def bench_name(processing: str) -> str:
    return "load_webhook" if processing == "thread" else f"load_webhook ({processing})"


def main() -> None:
    json_path = pop_json_arg()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--workers", default="2",
                        help="worker count, or several separated by commas (1,2): one run each")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="connections at most (Telegram's max_connections defaults to 40)")
    parser.add_argument("--sessions", type=int, default=0,
                        help="users acting at once (default 4 x concurrency)")
    parser.add_argument("--web", action="store_true", help="serve the web pages in the workers")
    parser.add_argument("--processing", choices=["thread", "process"], default="thread",
                        help="where each worker's inbox processor runs (HOTLINE_INBOX_PROCESSING)")
    args = parser.parse_args()
    os.environ["HOTLINE_INBOX_PROCESSING"] = args.processing  # the workers inherit it
    args.sessions = args.sessions or 4 * args.concurrency
    if not postgres_available():
        print("load test skipped: PostgreSQL is not reachable (set HOTLINE_BENCH_PG_URL)")
        write_results(json_path, [])
        return
    counts = [int(part) for part in str(args.workers).split(",") if part.strip()]
    results: list[Result] = []
    rates: list[float] = []
    failed = False
    for workers in counts:
        args.workers = workers
        these = asyncio.run(run(args, measure_startup=workers == counts[0]))
        rates.append(these[0].value)
        failed |= these[-1].met is False
        results += these
    if len(counts) > 1:
        ratio = rates[-1] / rates[0]
        print(f"throughput: {counts[-1]} workers {rates[-1]:,.0f} updates/s, {counts[0]} worker(s) "
              f"{rates[0]:,.0f} updates/s: ratio {ratio:.2f} (issue 23 target >= 1.3: "
              f"{'met' if ratio >= 1.3 else 'NOT met'})")
        results.append(Result(bench_name(args.processing), "postgres",
                              f"updates/s, {counts[-1]} vs {counts[0]} workers", ratio, "x",
                              target=">= 1.3", met=ratio >= 1.3))
    write_results(json_path, results)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
