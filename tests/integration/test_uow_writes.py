"""The unit of work's two hand-written write paths: queued outbox rows and the conversation step.

Both bypass the ORM flush for speed, so what the ORM used to guarantee is checked here: rows
land in the order they were queued with their ids known after commit, a rollback or a failed
savepoint takes its rows with it, and the step is written only when it changed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from handlers.engine import Engine
from handlers.harness import ScriptedClassifier, ScriptedUser
from hotline.clock import ManualClock
from hotline.deps import App
from hotline.messages import Button, OutboundMessage
from hotline.services.notify import enqueue
from storage.models import Conversation, OutboxMessage
from tests.factories import make_reporter


def message(n: int, chat: str = "42") -> OutboundMessage:
    return OutboundMessage(channel="telegram", chat_id=chat, text=f"<b>{n}</b>",
                           buttons=((Button("ok", f"ok:{n}"),),), meta={"n": n})


async def stored(app: App) -> list[tuple[int, str, dict]]:
    async with app.uow() as uow:
        rows = await uow.session.execute(
            select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.payload).order_by(OutboxMessage.id))
        return [(row.id, row.chat_id, row.payload) for row in rows]


async def test_queued_rows_land_in_order_with_their_ids(app: App, clock: ManualClock) -> None:
    now = clock.now()
    async with app.uow() as uow:
        one = enqueue(uow, message(1), now=now)
        assert one.id is None  # not written yet
        more = [enqueue(uow, message(n, chat=str(n % 2)), now=now, not_before=now + timedelta(hours=1))
                for n in range(2, 7)]
        await uow.commit()
    rows = await stored(app)
    assert [r[0] for r in rows] == [one.id] + [q.id for q in more]
    assert [r[2]["meta"]["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0][2] == message(1).to_json() | {"buttons": [[{"label": "ok", "payload": "ok:1"}]]}
    assert OutboundMessage.from_json(rows[3][2]) == message(4, chat="0")


async def test_reading_the_outbox_sees_what_is_queued(app: App, clock: ManualClock) -> None:
    async with app.uow() as uow:
        enqueue(uow, message(1, chat="7"), now=clock.now())
        pending = await uow.outbox.pending(chat_id="7")
        assert [row.payload["meta"]["n"] for row in pending] == [1]
        await uow.flush()  # nothing left to write twice
        await uow.commit()
    assert len(await stored(app)) == 1


async def test_rollback_and_closing_uncommitted_drop_queued_rows(app: App, clock: ManualClock) -> None:
    async with app.uow() as uow:
        enqueue(uow, message(1), now=clock.now())
        await uow.rollback()
        kept = enqueue(uow, message(2), now=clock.now())
        await uow.commit()
    async with app.uow() as uow:
        enqueue(uow, message(3), now=clock.now())  # never committed
    assert [r[2]["meta"]["n"] for r in await stored(app)] == [2]
    assert kept.id is not None


async def test_a_failed_savepoint_takes_only_its_own_rows(app: App, clock: ManualClock) -> None:
    now = clock.now()
    async with app.uow() as uow:
        enqueue(uow, message(1), now=now)
        with pytest.raises(ValueError):
            async with uow.savepoint():
                enqueue(uow, message(2), now=now)
                await uow.flush()  # written inside the savepoint, then rolled back with it
                enqueue(uow, message(3), now=now)
                raise ValueError
        async with uow.savepoint():
            enqueue(uow, message(4), now=now)
        await uow.commit()
    assert [r[2]["meta"]["n"] for r in await stored(app)] == [1, 4]


async def steps(app: App) -> list[tuple[str, str, dict, object]]:
    async with app.uow() as uow:
        rows = await uow.session.execute(select(Conversation.external_id, Conversation.step,
                                                Conversation.data, Conversation.updated_at))
        return [tuple(row) for row in rows]


async def test_the_step_is_stored_only_when_it_changes(app: App, clock: ManualClock) -> None:
    app._classifier = ScriptedClassifier()  # type: ignore[assignment]
    engine = Engine(app)
    _, contact = await make_reporter(app)
    user = ScriptedUser(engine, contact.external_id)
    await user.say("/help")
    assert await steps(app) == []  # idle, nothing to store
    await user.say("Dữ liệu đất đai chưa được chia sẻ, hồ sơ bị trả lại nhiều lần")
    [(ext, step, data, first_at)] = await steps(app)
    assert ext == contact.external_id and step != "idle" and data
    clock.advance(minutes=5)
    await user.say("/help")  # answered without touching the flow
    assert await steps(app) == [(ext, step, data, first_at)]
    await user.say("/cancel")
    [(_, after, after_data, at)] = await steps(app)
    assert after == "idle" and "draft" not in after_data and at > first_at
    async with app.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Conversation)) == 1
