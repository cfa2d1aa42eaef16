"""A reporter guessing ticket references of another organisation is refused like a missing one.

Tickets are numbered ``HL-YYYY-NNNNNN``, so references are easy to guess. An attacker (a
registered reporter of one organisation) tries every way in on the tickets of a reporter of
another organisation -- in every state that offers something (assigned, resolved, closed) --
through the real engine: ``/status`` and ``/ticket``, ``/add`` (with and without text, i.e.
the add-info flow), ``/reopen`` (with and without a reason), and forged button payloads for
every reporter and staff verb (open, answer, confirm, reopen, rate, acknowledge, resolve,
claim, extend...). Each attempt is paired with the same attempt on a reference that does not
exist: the two answers must be the same text (with the reference swapped), so the answer does
not even say the ticket exists. The public status page is tried with wrong check codes and
must answer exactly as for a missing ticket. Afterwards nothing but the attacker's own
de-duplication rows, replies and conversation step has changed.
"""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, update

from bot import numbered
from handlers.engine import Engine
from hotline.deps import App
from hotline.domain.enums import OrgKind, Role
from hotline.messages import InboundEvent
from hotline.web.app import setup_web
from storage.models import Base, Ticket
from tests.factories import file, make_staff
from tests.reliability.support import register
from tests.reliability.tally import TALLY

pytestmark = pytest.mark.timeout(60)

ATTACKER = 6666
MAY_CHANGE = {"inbound_updates", "outbox", "contacts", "conversations"}
_updates = itertools.count(1)


async def snapshot(app: App) -> dict[str, list[str]]:
    async with app.uow() as uow:
        return {
            table.name: sorted(repr(tuple(row)) for row in (await uow.session.execute(select(table))).all())
            for table in Base.metadata.sorted_tables if table.name not in MAY_CHANGE
        }


def attempts(ref: str) -> list[tuple[str, str]]:
    """(kind, text or payload) naming ``ref`` in every way a reporter could."""
    messages = [f"/status {ref}", f"/ticket {ref}", f"/status {ref.lower()}",
                f"/add {ref} Xin bổ sung thông tin", f"/add {ref}", f"/reopen {ref} Chưa xử lý xong",
                f"/reopen {ref}"]
    verbs = ["open", "ans", "cfm", "rop", "ack", "upd", "ask", "res", "ext", "claim", "rea", "tri",
             "recat", "prio", "rej"]
    buttons = [f"{verb}:{ref}" for verb in verbs]
    buttons += [f"rate:{ref}.5", f"rate:{ref}.1", f"exok:{ref}", f"reato:{ref}.1", f"recatto:{ref}.data",
                f"prioset:{ref}.urgent", f"reag:{ref}.mps"]
    return [("message", m) for m in messages] + [("button", b) for b in buttons]


async def say(engine: Engine, kind: str, content: str) -> list[str]:
    event = InboundEvent(
        channel="telegram", update_id=f"guess-{next(_updates)}", user_id=str(ATTACKER),
        chat_id=str(ATTACKER), kind=kind,  # type: ignore[arg-type]
        text=content if kind == "message" else None, payload=content if kind == "button" else None,
        message_id="77" if kind == "button" else None,
    )
    replies = await engine.handle(event)
    return [f"{r.text} {[[b.payload for b in row] for row in r.buttons]}" for r in replies]


async def test_guessed_references_are_refused_like_missing_ones(app: App) -> None:
    await make_staff(app, Role.MEMBER, "mps")
    victim, victim_contact = await register(app, 5001, org="Bộ Tài chính", kind=OrgKind.MINISTRY)
    attacker, attacker_contact = await register(app, ATTACKER, org="Công ty Tò Mò")
    own = await file(app, attacker, attacker_contact, "Dữ liệu của chính tôi chưa được chia sẻ")
    theirs = [await file(app, victim, victim_contact, f"Dữ liệu bí mật số {i}") for i in range(3)]
    async with app.uow() as uow:  # one to confirm/rate/reopen, one closed: every button has a state
        for ticket, state in zip(theirs[1:], ("resolved", "closed"), strict=True):
            await uow.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(state=state))
        await uow.commit()
    missing = [f"HL-{own.ref.split('-')[1]}-{990 + i:06d}" for i in range(3)]
    engine = Engine(app, intake=[numbered.intake])
    before = await snapshot(app)

    tried = different = 0
    leaks: list[tuple[str, str]] = []
    for target, absent in zip(theirs, missing, strict=True):
        for (kind, real), (_, fake) in zip(attempts(target.ref), attempts(absent), strict=True):
            got = await say(engine, kind, real)
            expected = await say(engine, kind, fake)
            tried += 1
            normalised = [text.replace(target.ref, "<REF>") for text in got]
            if normalised != [text.replace(absent, "<REF>") for text in expected]:
                different += 1
                leaks.append((real, " | ".join(got)[:300]))
            if any(word in " ".join(got) for word in ("bí mật", "Bộ Tài chính")):
                leaks.append((real, "victim's data in the answer"))
    # The attacker still sees their own ticket (the refusals above are not a blanket refusal).
    assert own.ref in " ".join(await say(engine, "message", f"/status {own.ref}"))
    after = await snapshot(app)

    # The public status page: a wrong check code answers exactly like a ticket that does not exist.
    page_leaks = await status_page_answers(app, theirs[0].ref, missing[0], theirs[0].check_code)
    tried += len(page_leaks)
    TALLY["guessed"] += tried
    TALLY["leaked"] += different + sum(page_leaks) + int(after != before)
    assert leaks == [], leaks[:5]
    assert after == before, [name for name in before if before[name] != after[name]]
    assert sum(page_leaks) == 0


async def status_page_answers(app: App, ref: str, absent: str, code: str) -> list[int]:
    """1 per wrong-code request whose answer differs from the missing ticket's."""
    server = web.Application()
    setup_web(server, app)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    results: list[int] = []
    try:
        async with aiohttp.ClientSession() as client:

            async def get(path: str) -> tuple[int, str]:
                async with client.get(base + path) as response:
                    return response.status, await response.text()

            for wrong in ("", "0000", code[:-1] + ("0" if code[-1] != "0" else "1"), code.upper() + "x"):
                real: Any = await get(f"/status/{ref}/{wrong}")
                fake: Any = await get(f"/status/{absent}/{wrong}")
                same = real[0] == fake[0] == 404 or (real[0] == fake[0] and real[0] >= 400)
                same = same and real[1].replace(ref, "<REF>") == fake[1].replace(absent, "<REF>")
                results.append(0 if same else 1)
            status, _ = await get(f"/status/{ref}/{code}")  # the right code does open it
            assert status == 200
    finally:
        await runner.cleanup()
    return results
