"""Who hears about a ladder step, and what they read: the escalation messages of SPEC §6.

A catch-up sweep may write tens of thousands of messages, so people and their contacts are
loaded once per sweep (``Audience``) instead of once per message as ``services.notify`` does;
the contact chosen is the same (``PeopleRepository.contacts_of(...)[0]``: the most recently
seen active contact), and the outbox rows carry what ``enqueue`` would write. Each recipient
reads the message in their own language, with buttons to act on the spot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hotline.config import Settings
from hotline.domain import payloads as P
from hotline.domain import sla
from hotline.domain.enums import EscalationLevel, ExtensionStatus, Role
from hotline.domain.ladder import Reason, Step, Thresholds, sla_clock_of
from hotline.i18n import format_local_date, t
from hotline.messages import OutboundMessage
from hotline.services.alerts import RedGroup
from hotline.services.notify import ButtonSpec, localise_buttons, outbox_values
from storage.batching import IN_CHUNK, chunks
from storage.models import Contact, Extension, OwnerGroup, Person, Ticket


@dataclass(frozen=True)
class Recipient:
    person_id: int
    name: str
    language: str
    contact_id: int | None
    channel: str | None
    chat_id: str | None

    @property
    def reachable(self) -> bool:
        return self.channel is not None and self.chat_id is not None


class Audience:
    """People by role and group, with their preferred contact, cached for one sweep."""

    def __init__(self) -> None:
        self.people: dict[int, Recipient] = {}
        self.by_role: dict[str, list[int]] = defaultdict(list)
        self.leads: dict[int, list[int]] = defaultdict(list)
        self.groups: dict[int, OwnerGroup] = {}
        self._roles_loaded = False

    async def load_roles(self, session: AsyncSession) -> None:
        if self._roles_loaded:
            return
        self.groups = {g.id: g for g in (await session.execute(select(OwnerGroup))).scalars()}
        roles = [Role.LEAD.value, Role.COORDINATOR.value, Role.LEADER.value, Role.ADMIN.value]
        stmt = (
            select(Person.id, Person.role, Person.group_id)
            .where(Person.role.in_(roles), Person.active.is_(True))
            .order_by(Person.id)
        )
        ids: list[int] = []
        for pid, role, group_id in await session.execute(stmt):
            ids.append(pid)
            if role == Role.LEAD.value and group_id is not None:
                self.leads[group_id].append(pid)
            else:
                self.by_role[role].append(pid)
        await self.ensure(session, ids)
        self._roles_loaded = True

    async def ensure(self, session: AsyncSession, person_ids: Iterable[int]) -> None:
        missing = sorted({pid for pid in person_ids if pid not in self.people})
        for chunk in chunks(missing, IN_CHUNK):
            people = {
                pid: (name, lang, active)
                for pid, name, lang, active in await session.execute(
                    select(Person.id, Person.display_name, Person.language, Person.active).where(
                        Person.id.in_(chunk)
                    )
                )
            }
            contacts: dict[int, tuple[int, str, str]] = {}
            stmt = (
                select(Contact.person_id, Contact.id, Contact.channel, Contact.chat_id)
                .where(Contact.person_id.in_(chunk), Contact.active.is_(True))
                .order_by(
                    Contact.person_id, Contact.last_seen_at.desc().nulls_last(), Contact.id.desc()
                )
            )
            for pid, cid, channel, chat_id in await session.execute(stmt):
                contacts.setdefault(pid, (cid, channel, chat_id))
            for pid, (name, lang, active) in people.items():
                found = contacts.get(pid) if active else None
                cid, channel, chat_id = found if found is not None else (None, None, None)
                self.people[pid] = Recipient(pid, name, lang or "vi", cid, channel, chat_id)

    def role(self, role: Role) -> list[int]:
        return self.by_role.get(role.value, [])

    def _rungs(self, level: EscalationLevel, ticket: Ticket) -> list[list[int]]:
        """SPEC §6 audiences of a step, then whoever the ladder names next."""
        leads = self.leads.get(ticket.group_id, [])
        coordinators = self.role(Role.COORDINATOR)
        if level is EscalationLevel.REMINDER:
            return [[ticket.assignee_id] if ticket.assignee_id else [], leads, coordinators]
        if level is EscalationLevel.L1:
            return [leads, coordinators]
        if level is EscalationLevel.L2:
            return [coordinators, self.role(Role.ADMIN)]
        return [self.role(Role.LEADER), coordinators]

    def recipients(self, level: EscalationLevel, ticket: Ticket) -> list[Recipient]:
        """The people a step is sent to: the first rung of its audience with someone who can
        be reached (active, with a contact). A reminder for a ticket nobody is assigned to (or
        whose assignee cannot be reached) goes to the group lead, as the ladder's next step
        would; a group without a reachable lead falls to the coordinators. Empty when nobody
        at all can be told: the step is then recorded as having no recipient, never as sent.
        """
        for ids in self._rungs(level, ticket):
            out: dict[int, Recipient] = {}
            for pid in ids:
                person = self.people.get(pid)
                if person is not None and person.reachable:
                    out.setdefault(pid, person)
            if out:
                return list(out.values())
        return []


async def pending_extensions(session: AsyncSession, ticket_ids: Sequence[int]) -> dict[int, int]:
    """Ticket id -> its pending extension request, for the coordinators' "approve" button."""
    if not ticket_ids:
        return {}
    stmt = (
        select(Extension.ticket_id, func.max(Extension.id))
        .where(
            Extension.ticket_id.in_(list(ticket_ids)),
            Extension.status == ExtensionStatus.PENDING.value,
        )
        .group_by(Extension.ticket_id)
    )
    return {tid: eid for tid, eid in await session.execute(stmt)}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def reason_text(step: Step, ticket: Ticket, thresholds: Thresholds, lang: str) -> Markup:
    key = f"escalation.reason.{step.reason.value}"
    if step.reason is Reason.SLA_FRACTION:
        fraction = (
            thresholds.reminder_fraction
            if step.level is EscalationLevel.REMINDER
            else thresholds.l1_fraction
        )
        return t(key, lang, pct=round(fraction * 100))
    if step.reason is Reason.NO_UPDATE:
        return t(key, lang, days=_num(thresholds.l1_no_update_business_days))
    if step.reason is Reason.OVERDUE_DAYS:
        return t(key, lang, days=_num(thresholds.l3_business_days_overdue))
    if step.reason is Reason.SECOND_EXTENSION:
        return t(key, lang, count=ticket.extension_requests)
    return t(key, lang)


def buttons_for(step: Step, ticket: Ticket, pending_extension: int | None) -> ButtonSpec:
    """The action each audience takes: the assignee updates or asks for time, the lead
    reassigns, the coordinator approves a waiting extension; everyone can open the ticket."""
    open_button = ("escalation.buttons.open", P.build(P.OPEN, ticket.ref))
    if step.level is EscalationLevel.REMINDER:
        return [[("escalation.buttons.update", P.build(P.UPDATE, ticket.ref)),
                 ("escalation.buttons.extend", P.build(P.EXTEND, ticket.ref))]]
    if step.level is EscalationLevel.L1:
        return [[("escalation.buttons.reassign", P.build(P.REASSIGN, ticket.ref)), open_button]]
    if step.level is EscalationLevel.L2 and pending_extension is not None:
        return [[("escalation.buttons.approve", P.build(P.EXT_APPROVE, pending_extension)),
                 open_button]]
    return [[open_button]]


class Notices:
    """Writes the outbox rows of fired steps, inside the sweep's transaction."""

    def __init__(
        self, settings: Settings, calendar: Any, thresholds: Thresholds, now: datetime,
        red: Sequence[RedGroup], audience: Audience,
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.thresholds = thresholds
        self.now = now
        self.red = list(red)
        self.audience = audience
        #: Texts that repeat across thousands of messages (reasons, priorities, red line).
        self._cache: dict[tuple[object, ...], Markup] = {}

    def _cached(self, key: tuple[object, ...], make: Callable[[], Markup]) -> Markup:
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = make()
        return found

    def outbox_rows(
        self, ticket: Ticket, step: Step, *, pending_extension: int | None,
        held_until: datetime | None,
    ) -> list[dict[str, Any]]:
        """The step's outbox rows, one per recipient (``Audience.recipients``; none if nobody
        can be told).

        Rows rather than ORM objects: a catch-up writes tens of thousands in one executemany.
        """
        assignee = self.audience.people.get(ticket.assignee_id) if ticket.assignee_id else None
        used = 0
        if step.level is EscalationLevel.REMINDER:
            used = round(100 * sla.used_fraction(self.calendar, sla_clock_of(ticket), self.now))
        buttons = buttons_for(step, ticket, pending_extension)
        key = f"escalation.{step.level.value}"
        rows: list[dict[str, Any]] = []
        for person in self.audience.recipients(step.level, ticket):
            lang = person.language
            text_key, actions = None, buttons
            if step.level is EscalationLevel.REMINDER and person.person_id != ticket.assignee_id:
                # Reminding the lead in the assignee's stead: the ticket needs an owner.
                text_key = ("escalation.reminder_unassigned" if ticket.assignee_id is None
                            else "escalation.reminder_lead")
                actions = [[("escalation.buttons.reassign", P.build(P.REASSIGN, ticket.ref)),
                            ("escalation.buttons.open", P.build(P.OPEN, ticket.ref))]]
            message = OutboundMessage(
                channel=person.channel,  # type: ignore[arg-type]
                chat_id=person.chat_id,  # type: ignore[arg-type]
                text=self.text(step, ticket, lang, assignee.name if assignee else "", used,
                               key=text_key),
                buttons=localise_buttons(actions, lang),
                meta={"key": key, "ticket": ticket.ref, "level": step.level.value},
            )
            rows.append(outbox_values(message, now=self.now, contact_id=person.contact_id,
                                      person_id=person.person_id, not_before=held_until))
        return rows

    def text(self, step: Step, ticket: Ticket, lang: str, assignee: str, used_pct: int,
             key: str | None = None) -> str:
        group = self.audience.groups.get(ticket.group_id)
        params: dict[str, Any] = {
            "ref": ticket.ref,
            "title": ticket.title,
            "group": group.name(lang) if group is not None else "",
            "deadline": format_local_date(ticket.deadline_at, lang, self.settings.timezone),
            "assignee": assignee or self._cached(("nobody", lang),
                                                 lambda: t("escalation.nobody", lang)),
            "reason": self._cached(
                (step.level, step.reason, lang, ticket.extension_requests),
                lambda: reason_text(step, ticket, self.thresholds, lang),
            ),
            "used": used_pct,
            "extensions": ticket.extension_count,
            "priority": self._cached(("priority", ticket.priority, lang),
                                     lambda: t(f"priority.{ticket.priority}", lang)),
        }
        if step.level is EscalationLevel.L3:
            params["red"] = self._cached(("red", lang), lambda: self._red_line(lang))
        return str(t(key or f"escalation.{step.level.value}", lang, **params))

    def _red_line(self, lang: str) -> Markup:
        names = [g.name(lang) for g in self.red]
        return t("escalation.red.l3_line", lang, groups=", ".join(names)) if names else Markup("")
