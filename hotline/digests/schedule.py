"""The scheduled sends: what ``escalation.scheduler`` calls on Monday mornings and monthly.

Each audience of the period is sent through ``send_digest``, whose ``DigestRun`` row makes the
send once-only; so this function may run again after a crash or on a second worker and only
the audiences not yet sent go out. A failing audience does not stop the others, but the error
is raised at the end so the scheduler keeps the occasion open and retries it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from hotline.digests.data import build_digest_with_inputs
from hotline.digests.period import Period, last_complete_month, last_complete_week
from hotline.digests.send import LEADERS, REPORTERS, Audience, SendResult, send_digest
from hotline.domain.enums import Role

log = logging.getLogger(__name__)


def period_for(kind: Literal["week", "month"], now: datetime, tz: str) -> Period:
    """Monday's digest is about the week that just ended; the monthly one about last month."""
    return last_complete_week(now, tz) if kind == "week" else last_complete_month(now, tz)


async def scheduled_audiences(app: Any, kind: Literal["week", "month"]) -> list[Audience]:
    """Leaders, every group with a lead, and (weekly only) the reporters who opted in."""
    async with app.uow() as uow:
        groups = [g for g in await uow.people.groups() if g.active]
        leads = await uow.people.with_role(Role.LEAD)
    with_lead = {p.group_id for p in leads}
    audiences = [LEADERS] + [Audience("group", g.code) for g in groups if g.id in with_lead]
    if kind == "week":
        audiences.append(REPORTERS)
    return audiences


async def send_scheduled_digests(app: Any, now: datetime, kind: Literal["week", "month"]) -> int:
    """Queue the ``kind`` digests due at ``now``; returns the number of messages queued."""
    period = period_for(kind, now, app.settings.timezone)
    digest, inputs = await build_digest_with_inputs(app, period)
    results: list[SendResult] = []
    failure: Exception | None = None
    for audience in await scheduled_audiences(app, kind):
        try:
            results.append(await send_digest(app, period, audience, now=now, digest=digest, inputs=inputs))
        except Exception as exc:  # one audience must not hold back the others
            log.exception("%s digest %s for %s failed", kind, period.label, audience.key)
            failure = failure or exc
    sent = [r for r in results if r.status == "sent"]
    log.info(
        "%s digest %s: %d audience(s) sent, %d already sent, %d message(s)",
        kind,
        period.label,
        len(sent),
        len(results) - len(sent),
        sum(r.messages for r in sent),
    )
    if failure is not None:
        raise failure
    return sum(r.messages for r in sent)
