"""Red alerts: an owner group with too many overdue tickets is publicly flagged (SPEC §1, §6).

The alert is a period (a ``GroupAlert`` row, open while ``cleared_at`` is null) rather than a
flag recomputed on every read, so that the group's lead and the leaders are told exactly once
when a group turns red and once when it clears, across restarts and concurrent sweeps: the
change is decided under a lock on the owner group's row and re-checked against the stored
period, never against memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from hotline.deps import Deps
from hotline.domain.enums import Role
from hotline.domain.ladder import OPEN_STATE_VALUES, is_overdue, overdue_cutoff
from hotline.services.notify import notify
from storage.models import GroupAlert, OwnerGroup, Person, Ticket
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from hotline.domain.calendar import BusinessCalendar


@dataclass(frozen=True)
class RedGroup:
    group_id: int
    code: str
    name_vi: str
    name_en: str
    overdue: int
    raised_at: datetime

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


@dataclass
class AlertChanges:
    raised: list[RedGroup] = field(default_factory=list)
    cleared: list[RedGroup] = field(default_factory=list)
    #: Every group red after the update (what the leaders' L3 messages mention).
    red: list[RedGroup] = field(default_factory=list)


def is_red(overdue: int, threshold: int) -> bool:
    """"More than" the threshold, as SPEC §6 says: at the threshold a group is not yet red."""
    return overdue > threshold


async def overdue_by_group(
    uow: UnitOfWork, calendar: BusinessCalendar, now: datetime
) -> dict[int, int]:
    """Live count of overdue open tickets per owner group id (dashboards, digests).

    Counted in Python with ``ladder.is_overdue`` (the same rule as ``sla.is_overdue`` and the
    sweep), because "overdue" is business time: a Friday 17:00 deadline is not overdue on Sunday.
    """
    stmt = select(
        Ticket.group_id, Ticket.cycle, Ticket.cycle_started_at, Ticket.budget_seconds,
        Ticket.paused_seconds, Ticket.paused_since, Ticket.deadline_at,
    ).where(Ticket.state.in_(sorted(OPEN_STATE_VALUES)))
    cutoff = overdue_cutoff(calendar, now)
    counts: dict[int, int] = {}
    for row in await uow.session.execute(stmt):
        if is_overdue(row, calendar, now, cutoff=cutoff):  # type: ignore[arg-type]
            counts[row.group_id] = counts.get(row.group_id, 0) + 1
    return counts


async def red_groups(uow: UnitOfWork) -> list[RedGroup]:
    """Groups under an open red alert (as of the last sweep), worst first.

    This is the alert state people were told about, which is what digests and the dashboard
    must show; ``overdue_by_group`` gives the live numbers.
    """
    stmt = (
        select(GroupAlert, OwnerGroup)
        .join(OwnerGroup, OwnerGroup.id == GroupAlert.group_id)
        .where(GroupAlert.cleared_at.is_(None))
        .order_by(GroupAlert.overdue_count.desc(), OwnerGroup.code)
    )
    seen: set[int] = set()
    result: list[RedGroup] = []
    for alert, group in await uow.session.execute(stmt):
        if group.id in seen:
            continue
        seen.add(group.id)
        result.append(_red(alert, group))
    return result


def _red(alert: GroupAlert, group: OwnerGroup, overdue: int | None = None) -> RedGroup:
    return RedGroup(
        group_id=group.id,
        code=group.code,
        name_vi=group.name_vi,
        name_en=group.name_en,
        overdue=alert.overdue_count if overdue is None else overdue,
        raised_at=alert.raised_at,
    )


async def _open_alerts(uow: UnitOfWork, group_id: int | None = None) -> list[GroupAlert]:
    stmt = select(GroupAlert).where(GroupAlert.cleared_at.is_(None))
    if group_id is not None:
        stmt = stmt.where(GroupAlert.group_id == group_id)
    return list((await uow.session.execute(stmt.order_by(GroupAlert.id))).scalars())


async def _audience(uow: UnitOfWork, group_id: int) -> list[Person]:
    """The group's lead(s) and the leaders, each once."""
    people = await uow.people.with_role(Role.LEAD, group_id=group_id)
    people += await uow.people.with_role(Role.LEADER)
    unique: dict[int, Person] = {}
    for person in people:
        unique.setdefault(person.id, person)
    return list(unique.values())


async def update_alerts(
    uow: UnitOfWork,
    deps: Deps,
    overdue: Mapping[int, int],
    now: datetime,
    *,
    dry_run: bool = False,
    not_before: datetime | None = None,
) -> AlertChanges:
    """Open or close alert periods so they match ``overdue`` (group id -> overdue count).

    Runs inside the caller's unit of work; the caller commits. Groups absent from ``overdue``
    have no overdue tickets. ``not_before`` holds the messages until working hours.
    """
    threshold = deps.settings.red_alert_overdue_threshold
    groups = {g.id: g for g in await uow.people.groups()}
    open_by_group: dict[int, GroupAlert] = {}
    for alert in await _open_alerts(uow):
        open_by_group.setdefault(alert.group_id, alert)
    changes = AlertChanges()
    for group_id in sorted(set(overdue) | set(open_by_group)):
        group = groups.get(group_id)
        if group is None:
            continue
        count = int(overdue.get(group_id, 0))
        red_now = is_red(count, threshold)
        alert = open_by_group.get(group_id)
        if red_now == (alert is not None):
            if alert is not None:
                if alert.overdue_count != count and not dry_run:
                    alert.overdue_count = count
                changes.red.append(_red(alert, group, count))
            continue
        if dry_run:
            probe = GroupAlert(group_id=group_id, raised_at=now, overdue_count=count)
            (changes.raised if red_now else changes.cleared).append(
                _red(alert or probe, group, count)
            )
            if red_now:
                changes.red.append(_red(probe, group, count))
            continue
        # Decide again under the group's row lock: another sweep may have just done it.
        await uow.session.execute(
            select(OwnerGroup.id).where(OwnerGroup.id == group_id).with_for_update()
        )
        current = await _open_alerts(uow, group_id)
        if red_now and not current:
            raised = GroupAlert(group_id=group_id, raised_at=now, overdue_count=count)
            uow.session.add(raised)
            changes.raised.append(_red(raised, group, count))
            changes.red.append(_red(raised, group, count))
            await _tell(uow, group, "escalation.red.raised", now, count, threshold, not_before)
        elif not red_now and current:
            for row in current:
                row.cleared_at = now
            changes.cleared.append(_red(current[0], group, count))
            await _tell(uow, group, "escalation.red.cleared", now, count, threshold, not_before)
        elif current:
            changes.red.append(_red(current[0], group, count))
    await uow.flush()
    return changes


async def _tell(
    uow: UnitOfWork, group: OwnerGroup, key: str, now: datetime, count: int, threshold: int,
    not_before: datetime | None,
) -> None:
    for person in await _audience(uow, group.id):
        await notify(
            uow, person, key, now=now, not_before=not_before, group=group.name, count=count,
            threshold=threshold,
        )
