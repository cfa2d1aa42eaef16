"""Vocabulary shared by every layer; values are stored in the database as these strings."""

from __future__ import annotations

from enum import StrEnum


class TicketState(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_REPORTER = "waiting_reporter"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    REOPENED = "reopened"


#: States in which the ticket is still the working group's job (counted as "open").
OPEN_STATES: frozenset[TicketState] = frozenset(
    {
        TicketState.NEW,
        TicketState.ASSIGNED,
        TicketState.IN_PROGRESS,
        TicketState.WAITING_REPORTER,
        TicketState.REOPENED,
    }
)
TERMINAL_STATES: frozenset[TicketState] = frozenset({TicketState.CLOSED, TicketState.REJECTED})


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Role(StrEnum):
    REPORTER = "reporter"
    MEMBER = "member"
    LEAD = "lead"
    COORDINATOR = "coordinator"
    LEADER = "leader"
    ADMIN = "admin"


#: Roles that work tickets (see a group queue).
STAFF_ROLES: frozenset[Role] = frozenset({Role.MEMBER, Role.LEAD, Role.COORDINATOR, Role.ADMIN})
#: Roles that need an owner group when invited.
GROUP_ROLES: frozenset[Role] = frozenset({Role.MEMBER, Role.LEAD})


class OrgKind(StrEnum):
    ENTERPRISE = "enterprise"
    MINISTRY = "ministry"
    LOCALITY = "locality"
    OTHER = "other"


class Channel(StrEnum):
    TELEGRAM = "telegram"
    ZALO_BOT = "zalo_bot"
    ZALO_OA = "zalo_oa"
    CONSOLE = "console"


class Rag(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class EventKind(StrEnum):
    """Every change to a ticket is one of these, appended to ``ticket_events``."""

    CREATED = "created"
    STATE_CHANGED = "state_changed"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    MESSAGE = "message"  # update from the owner to the reporter
    INFO_ADDED = "info_added"  # reporter added information
    INFO_REQUESTED = "info_requested"
    INFO_PROVIDED = "info_provided"
    ATTACHMENT = "attachment"
    RESOLVED = "resolved"
    CONFIRMED = "confirmed"
    AUTO_CLOSED = "auto_closed"
    REOPENED = "reopened"
    REJECTED = "rejected"
    DUPLICATE_LINKED = "duplicate_linked"
    RECATEGORISED = "recategorised"
    PRIORITY_CHANGED = "priority_changed"
    DEADLINE_CHANGED = "deadline_changed"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_APPROVED = "extension_approved"
    EXTENSION_REFUSED = "extension_refused"
    ESCALATED = "escalated"
    RATED = "rated"
    PAUSED = "paused"
    RESUMED = "resumed"
    #: Recorded on an original: another reporter is affected by the same problem (followed it
    #: at intake, or their report was linked to it as a duplicate).
    FOLLOWED = "followed"


class ExtensionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class EscalationLevel(StrEnum):
    REMINDER = "reminder"
    L1 = "l1"
    L2 = "l2"
    L3 = "l3"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the retry cap
    UNDELIVERABLE = "undeliverable"  # contact blocked the bot / outside messaging window
