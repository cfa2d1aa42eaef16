"""1,000 malformed or hostile updates POSTed to the webhook of the running bot.

The real ``BotRuntime`` (aiogram's webhook handler behind our secret guard, the engine, the
outbox dispatcher) listens on loopback; the fake Bot API records what the bot sends and parses
its HTML strictly (an unescaped ``<`` from user input would be refused with a 400, and the row
would fail). The updates come from a seeded generator, so every run sends the same 1,000:
wrong types, missing fields, huge texts, HTML/SQL/template injection in texts, names and
command arguments, forged callback data naming other people's tickets, unknown update kinds,
non-JSON bodies.

Checked: the process never stops and still answers a normal /start afterwards; no request gets
a 5xx; every table is unchanged except the ones a stranger's message may legitimately touch
(``inbound_updates`` de-duplication rows, the ``outbox`` replies, ``contacts`` and
``conversations`` of the senders, and a ``/web`` sign-in link a registered sender asked for
for themselves); every reply was accepted by the strict HTML parser and
carries the hostile markup only escaped.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.runtime import BotRuntime
from handlers.harness import ScriptedClassifier
from hotline.deps import App
from hotline.domain.enums import OrgKind, Role
from storage.models import Base, KeyValue, OutboxMessage
from tests.factories import file, make_staff
from tests.fakes.telegram_api import WEBHOOK_SECRET_HEADER, FakeTelegramServer, make_test_bot
from tests.integration.test_dispatcher import running_clock
from tests.reliability.support import SECRET, all_sent, outbox_rows, register, wait_for
from tests.reliability.tally import TALLY

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore:Detected unknown update type:RuntimeWarning")]

COUNT = 1000
SEED = 20261207
#: Tables a stranger's message may touch: de-duplication, replies, the sender's contact and step.
MAY_CHANGE = {"inbound_updates", "outbox", "contacts", "conversations"}
INJECTIONS = [
    "<b>đậm</b>", "<script>alert(1)</script>", "<a href=\"javascript:alert(1)\">bấm</a>",
    "</code></pre><i>", "'; DROP TABLE tickets; --", "\" OR 1=1 --", "1; DELETE FROM people",
    "{{ 7*7 }}", "${jndi:ldap://x}", "%s%s%s%n", "&amp;&lt;&gt;", "<img src=x onerror=alert(1)>",
    "\u202egnp.exe", "HL-2026-000001'--", "<tg-spoiler>", "&#60;b&#62;", "<<>>", "a\x00b",
]
#: Raw markup from the list above that must never reach Telegram unescaped.
RAW_MARKERS = ["<b>đậm", "<script", "<a href=\"javascript", "</code></pre><i>", "<img", "<tg-spoiler>",
               "<<>>"]


def hostile_updates(fake: FakeTelegramServer, rnd: random.Random, reporters: list[int],
                    refs: list[str]) -> list[bytes]:
    """``COUNT`` request bodies; most are JSON updates, some are not JSON at all."""
    bodies: list[bytes] = []
    next_id = iter(range(900_000_001, 900_000_001 + 10 * COUNT))

    def body(update: Any) -> bytes:
        return json.dumps(update, ensure_ascii=rnd.random() < 0.5).encode()

    def sender() -> dict[str, Any]:
        if rnd.random() < 0.4:
            user_id = rnd.choice(reporters)
        else:
            user_id = rnd.randint(10_000_000, 99_999_999)  # a stranger
        name = rnd.choice(["An", *INJECTIONS])
        return fake.user(user_id, name, rnd.choice([None, *INJECTIONS]),
                         username=rnd.choice([None, "x", "<b>u</b>"]),
                         language_code=rnd.choice([None, "vi", "en", "xx", "<i>"]))

    def text() -> str:
        pick = rnd.random()
        if pick < 0.15:
            return rnd.choice(INJECTIONS) * rnd.randint(200, 3000)  # huge
        if pick < 0.55:
            return " ".join(rnd.choice(INJECTIONS) for _ in range(rnd.randint(1, 4)))
        command = rnd.choice(["/status", "/ticket", "/add", "/reopen", "/open", "/start", "/join",
                              "/mine", "/help", "/report", "/web", "/rate", "/ack", "/unknown"])
        arg = rnd.choice([*refs, "HL-2026-999999", "HL-0000-000000", "hl-2026-000001", "",
                          *INJECTIONS])
        return f"{command} {arg} {rnd.choice(INJECTIONS)}".strip()

    def forged_data() -> str | None:
        verb = rnd.choice(["ack", "upd", "ask", "ans", "res", "cfm", "rop", "rate", "ext", "exok",
                           "exno", "claim", "rea", "tri", "open", "lang", "kind", "skip", "cancel",
                           "rfile", "rpick", "runsure", "rchange", "reag", "reato", "recat",
                           "recatto", "prio", "prioset", "rej", "zzz"])
        arg = rnd.choice([*refs, "HL-2026-999999", "1", "-1", "9" * 40, "vi", "en", "enterprise",
                          f"{rnd.choice(refs)}.5", f"{rnd.choice(refs)}.1", f"{rnd.choice(refs)}.mps",
                          "'; DROP TABLE x;--", "<b>", ""])
        return rnd.choice([f"{verb}:{arg}"[:64], f"{verb}:{arg}", None, "", "x" * 64,
                           f"{verb}:{arg}" + "y" * 80, rnd.choice(INJECTIONS)])

    for _ in range(COUNT):
        kind = rnd.random()
        user = sender()
        if kind < 0.30:  # a plain message with hostile text
            update = fake.text_update(text(), user=user)
        elif kind < 0.50:  # a forged button press
            update = fake.callback_update(forged_data(), user=user)
        elif kind < 0.60:  # wrong types
            update = fake.text_update("xin chào", user=user)
            message = update["message"]
            field, value = rnd.choice([
                ("text", 12345), ("text", ["a", "b"]), ("chat", "not a chat"), ("from", 7),
                ("date", "yesterday"), ("message_id", "abc"), ("text", {"$ne": None}),
                ("entities", "bold"), ("entities", [{"type": "bot_command", "offset": -5, "length": 999}]),
            ])
            message[field] = value
            if rnd.random() < 0.3:
                update["update_id"] = rnd.choice(["abc", -1, 2**70, None, 1.5])
        elif kind < 0.70:  # missing fields
            update = fake.text_update("thiếu trường", user=user)
            for field in rnd.sample(["chat", "from", "date", "message_id", "text"], rnd.randint(1, 3)):
                update["message"].pop(field, None)
            if rnd.random() < 0.3:
                update.pop("update_id")
        elif kind < 0.80:  # unknown or unsubscribed update kinds
            update = rnd.choice([
                fake.edited_message_update(text(), user=user),
                fake.channel_post_update(rnd.choice(INJECTIONS)),
                fake.my_chat_member_update(user=user),
                {"inline_query": {"id": "1", "from": user, "query": rnd.choice(INJECTIONS), "offset": ""}},
                {"poll": {"id": "p", "question": "<b>?</b>", "options": []}},
                {"chat_join_request": {"chat": fake.group_chat(), "from": user, "date": 0}},
                {"made_up_kind": {"anything": rnd.choice(INJECTIONS)}},
                {},
            ])
        elif kind < 0.88:  # photos and documents with hostile captions and names
            update = rnd.choice([
                fake.photo_update(caption=text(), user=user),
                fake.document_update(rnd.choice(INJECTIONS)[:60] or "x", user=user),
                fake.sticker_update(user=user),
                fake.voice_update(user=user),
                fake.location_update(user=user),
            ])
        elif kind < 0.94:  # a message in a group the bot is in
            group = fake.group_chat(-100_000_000_000 - rnd.randint(1, 9))
            update = fake.text_update(text(), user=user, chat=group)
        else:  # not an update at all
            bodies.append(rnd.choice([b"", b"not json", b"[1,2,3]", b"null", b"{\"update_id\": ",
                                      b"\xff\xfe\x00", b"{}" * 1000,
                                      json.dumps(rnd.choice(INJECTIONS)).encode()]))
            continue
        if isinstance(update, dict) and "update_id" not in update and rnd.random() < 0.7:
            update["update_id"] = next(next_id)
        bodies.append(body(update))
    return bodies


async def snapshot(app: App) -> dict[str, list[str]]:
    """Every row of every table that hostile input must not change, as sorted reprs."""
    tables: dict[str, list[str]] = {}
    async with app.uow() as uow:
        for table in Base.metadata.sorted_tables:
            if table.name in MAY_CHANGE:
                continue
            rows = (await uow.session.execute(select(table))).all()
            if table.name == "key_values":  # a registered sender may ask /web for their own link
                rows = [row for row in rows if not str(row[0]).startswith("web.signin.")]
            tables[table.name] = sorted(repr(tuple(row)) for row in rows)
    return tables


async def test_a_thousand_hostile_updates_change_nothing_they_should_not(
    app: App, telegram_server: FakeTelegramServer
) -> None:
    fake = telegram_server
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    running_clock(app)
    app.settings = app.settings.model_copy(update={
        "webhook_secret": SecretStr(SECRET), "outbox_per_chat_interval": 0.0,
        "outbox_global_per_second": 1000.0,
    })
    await make_staff(app, Role.MEMBER, "mps", channel="telegram")
    await make_staff(app, Role.COORDINATOR, channel="telegram")
    owner, owner_contact = await register(app, 6001, org="Bộ Công Thương", kind=OrgKind.MINISTRY)
    tickets = [await file(app, owner, owner_contact, f"Dữ liệu chưa chia sẻ {i}") for i in range(3)]
    refs = [ticket.ref for ticket in tickets]
    reporters = [6101, 6102, 6103]
    senders = []
    for i, chat in enumerate(reporters):
        person, _ = await register(app, chat, org=f"Công ty khác {i}", language=["vi", "en", "vi"][i])
        senders.append(person.id)
    bodies = hostile_updates(fake, random.Random(SEED), reporters, refs)
    assert len(bodies) == COUNT
    runtime = BotRuntime(app, make_test_bot(fake), webhook=True, port=0, web=False, scheduler=False,
                         worker_id="hostile", drain_timeout=5)
    task = asyncio.create_task(runtime.run(handle_signals=False))
    statuses: Counter[int] = Counter()
    try:
        async with asyncio.timeout(10):
            await runtime.started.wait()
        url = runtime.telegram_webhook_url
        assert url is not None
        await wait_for(lambda: all_sent(app), 10, "a quiet outbox")
        before = await snapshot(app)
        gate = asyncio.Semaphore(8)
        async with aiohttp.ClientSession() as client:

            async def send(raw: bytes) -> None:
                async with gate, client.post(
                    url, data=raw, timeout=aiohttp.ClientTimeout(total=30),
                    headers={"Content-Type": "application/json", WEBHOOK_SECRET_HEADER: SECRET},
                ) as response:
                    statuses[response.status] += 1

            await asyncio.gather(*(send(raw) for raw in bodies))
        assert not task.done(), "the bot stopped under hostile input"
        await wait_for(lambda: all_sent(app), 60, "every reply sent (none refused by the parser)")
        after = await snapshot(app)
        # Still alive: a stranger's /start is answered.
        await fake.post_to_webhook(fake.command_update("start", user=fake.user(55_555)), url=url,
                                   secret_token=SECRET)
        await wait_for(lambda: _true(bool(fake.sent_messages(55_555))), 10, "an answer to /start")
    finally:
        runtime.stop()
        async with asyncio.timeout(20):
            await task

    async with app.uow() as uow:
        links = [json.loads(value)["person_id"] for key, value in (await uow.session.execute(
            select(KeyValue.key, KeyValue.value))).all() if key.startswith("web.signin.")]
    assert set(links) <= set(senders), "a sign-in link for somebody who did not ask"
    changed = sorted(name for name in before if before[name] != after[name])
    raw = [(c.params.get("chat_id"), marker) for c in fake.calls_to("sendMessage")
           for marker in RAW_MARKERS if marker in str(c.params.get("text", ""))]
    rows = await outbox_rows(app)
    refused = [row.id for row in rows if row.status != "sent"]
    TALLY["hostile"] += COUNT
    TALLY["leaked"] += len(changed) + len(raw)
    assert sum(n for status, n in statuses.items() if status >= 500) == 0, statuses
    assert set(statuses) <= {200, 400, 413}, statuses
    diff = [set(before[name]) ^ set(after[name]) for name in changed]
    assert changed == [], f"hostile updates changed {changed}: {str(diff)[:3000]}"
    assert raw == [], f"unescaped markup sent: {raw[:5]}"
    assert refused == []
    assert len(fake.calls_to("sendMessage")) > 100  # the bot did answer most of them
    assert all(c.params.get("parse_mode") == "HTML" for c in fake.calls_to("sendMessage"))
    assert not any(isinstance(r, OutboxMessage) and r.last_error for r in rows)


async def _true(value: bool) -> bool:
    return value
