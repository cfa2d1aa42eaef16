"""Who may do what: pure functions over a person and a ticket, shared by chat, CLI and web."""

from __future__ import annotations

from hotline.domain.enums import Role
from hotline.errors import Forbidden
from storage.models import Person, Ticket

_ALL_SEEING = {Role.COORDINATOR.value, Role.LEADER.value, Role.ADMIN.value}
_TRIAGE = {Role.COORDINATOR.value, Role.ADMIN.value}


def is_staff(person: Person) -> bool:
    return person.role in {Role.MEMBER.value, Role.LEAD.value, Role.COORDINATOR.value, Role.ADMIN.value}


def is_coordinator(person: Person) -> bool:
    return person.role in _TRIAGE


def can_view(person: Person, ticket: Ticket, *, is_follower: bool = False) -> bool:
    if person.role in _ALL_SEEING:
        return True
    if person.role in (Role.MEMBER.value, Role.LEAD.value):
        return ticket.group_id == person.group_id or ticket.assignee_id == person.id
    # Reporters: their own organisation's tickets, and originals they follow as duplicates.
    if ticket.reporter_id == person.id or is_follower:
        return True
    return person.organisation_id is not None and ticket.organisation_id == person.organisation_id


def can_work(person: Person, ticket: Ticket) -> bool:
    """Acknowledge, update, ask for info, resolve, request an extension."""
    if person.role in _TRIAGE:
        return True
    if ticket.assignee_id == person.id:
        return True
    return person.role == Role.LEAD.value and ticket.group_id == person.group_id


def can_claim(person: Person, ticket: Ticket) -> bool:
    return (
        person.role in (Role.MEMBER.value, Role.LEAD.value)
        and ticket.group_id == person.group_id
        and ticket.assignee_id is None
    )


def can_reassign(person: Person, ticket: Ticket, target: Person) -> bool:
    if person.role in _TRIAGE:
        return target.role in (Role.MEMBER.value, Role.LEAD.value) and target.active
    return (
        person.role == Role.LEAD.value
        and ticket.group_id == person.group_id
        and target.group_id == person.group_id
        and target.active
    )


def is_reporter_side(person: Person, ticket: Ticket) -> bool:
    """Confirm, rate, reopen and add information belong to the reporting organisation."""
    if person.role != Role.REPORTER.value:
        return False
    return ticket.reporter_id == person.id or (
        person.organisation_id is not None and ticket.organisation_id == person.organisation_id
    )


def require(allowed: bool, what: str) -> None:
    if not allowed:
        raise Forbidden(f"not allowed: {what}", what=what)
