"""SQLAlchemy models: the single source of the schema (Alembic migrations are generated from it).

Rows hold state; every change to a ticket is also an append-only ``TicketEvent``, which is what
digests count. Uniqueness that matters for correctness (ticket refs, escalation steps, inbound
update ids, digest sends) is enforced by constraints, never by flags in memory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger primary keys that still autoincrement on SQLite (which only does so for INTEGER).
BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class OwnerGroup(Base):
    __tablename__ = "owner_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_vi: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    #: Members pick tickets from the group queue instead of automatic assignment.
    claim_from_queue: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    tax_code: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime]


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("owner_groups.id"), index=True)
    language: Mapped[str] = mapped_column(String(2), default="vi")
    digest_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Round robin among equally loaded members: the one assigned longest ago goes first.
    last_assigned_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class Contact(Base):
    """A person's identity on one channel; notifications go to a contact's chat."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200), default=None)
    #: False once the channel says we may no longer write (blocked bot, messaging window closed).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)


class TicketCounter(Base):
    """One row per year (SQLite; PostgreSQL numbers from a sequence per year): see ``next_seq``."""

    __tablename__ = "ticket_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("year", "seq"),
        Index("ix_tickets_state_deadline", "state", "deadline_at"),
        Index("ix_tickets_group_state", "group_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    #: Random code printed next to the ref in public status links, so refs cannot be enumerated.
    check_code: Mapped[str] = mapped_column(String(16))

    reporter_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(2), default="vi")

    category: Mapped[str] = mapped_column(String(32), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("owner_groups.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    state: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    needs_triage: Mapped[bool] = mapped_column(Boolean, default=False)
    classifier_confidence: Mapped[float | None] = mapped_column(Float, default=None)

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)

    # --- SLA clock (see hotline/domain/sla.py for the meaning) ---
    sla_days: Mapped[int] = mapped_column(Integer)
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    accepted_at: Mapped[datetime]
    cycle_started_at: Mapped[datetime]
    budget_seconds: Mapped[float] = mapped_column(Float)
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    paused_since: Mapped[datetime | None] = mapped_column(default=None)
    deadline_at: Mapped[datetime]
    first_response_due_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    last_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_requests: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)

    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    rating_comment: Mapped[str | None] = mapped_column(Text, default=None)

    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TicketEvent(Base):
    """Append-only audit trail; the source of truth for digests."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index("ix_ticket_events_ticket_at", "ticket_id", "at"),
        Index("ix_ticket_events_kind_at", "kind", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    at: Mapped[datetime] = mapped_column(index=True)
    from_state: Mapped[str | None] = mapped_column(String(20), default=None)
    to_state: Mapped[str | None] = mapped_column(String(20), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Lets an event be recorded for a ticket not yet flushed (filing writes the ticket and its
    #: first events in one flush). Never loaded: read ``ticket_id``.
    ticket: Mapped[Ticket] = relationship(lazy="raise")


class TicketFollower(Base):
    """Affected parties of a kind besides the original's reporter: people told about the ticket
    and counted as affected -- reporters of linked duplicates (``source="duplicate"``) and
    reporters who chose "this is my problem" at intake (``source="intake"``)."""

    __tablename__ = "ticket_followers"
    __table_args__ = (UniqueConstraint("ticket_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), default=None)
    #: The follower's organisation when they joined (affected parties are counted by it).
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), default=None)
    source: Mapped[str] = mapped_column(String(16), default="duplicate")
    created_at: Mapped[datetime]


class SimilarityDoc(Base):
    """A ticket's canonical text (``hotline.similarity.text.canonical``), written when it is
    filed, so suggestions re-score candidates without re-reading or re-normalising reports."""

    __tablename__ = "similarity_docs"

    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    #: Decree/law numbers and years named in the report, space-separated (``text.anchors``).
    anchors: Mapped[str] = mapped_column(String(400), default="")
    indexed_at: Mapped[datetime]
    #: Whether the ticket's terms are in ``similarity_terms``: only while it may be suggested
    #: (open, or resolved recently); housekeeping prunes the postings of the others.
    posted: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Euclidean norm of the document's word weights (``score.Profile.norm``), so the candidate
    #: query ranks by cosine and coverage as the score does; NULL: indexed before it existed.
    norm: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (Index("ix_similarity_docs_posted", "posted", "ticket_id"),)


class SimilarityTerm(Base):
    """Inverted index: which tickets contain a canonical term (a 31-bit hash of it). Searching
    reads the postings of a query's rarest terms only -- no process loads the whole index."""

    __tablename__ = "similarity_terms"

    term: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"), primary_key=True,
                                           index=True)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id"), default=None)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    file_ref: Mapped[str] = mapped_column(String(512))
    file_name: Mapped[str | None] = mapped_column(String(255), default=None)
    mime_type: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime]


class Extension(Base):
    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    requested_at: Mapped[datetime]
    old_deadline: Mapped[datetime]
    new_deadline: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)


class Invite(Base):
    """Single-use, expiring invitation to a role; only the code's hash is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("owner_groups.id"), default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Escalation(Base):
    """One row per fired ladder step; the unique key makes each step fire exactly once."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("ticket_id", "level", "cycle"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    level: Mapped[str] = mapped_column(String(10))
    cycle: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime]


class GroupAlert(Base):
    """Red-alert periods of an owner group (open while ``cleared_at`` is null)."""

    __tablename__ = "group_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("owner_groups.id"), index=True)
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
    overdue_count: Mapped[int] = mapped_column(Integer)


class OutboxMessage(Base):
    """Every outbound message, written in the transaction that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        #: Per-chat rate limits look up a chat's recent sends (bot/dispatcher.py).
        Index("ix_outbox_chat_sent", "chat_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), default=None)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Held until this instant (working-hours delivery of escalations).
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Optional idempotency key (e.g. one digest per audience and period).
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True, default=None)
    #: Lease of the dispatcher sending this row (several workers): who, and until when it is
    #: theirs; an expired lease (crashed worker) lets another worker retry the row.
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    #: Pieces of a split text already delivered, so a retry resumes instead of repeating them.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)


class InboundUpdate(Base):
    """(channel, update id) seen, so a redelivered update is processed once."""

    __tablename__ = "inbound_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime]


class InboxEntry(Base):
    """A raw inbound update, recorded (and committed) before the channel got its answer.

    Processed from here in chat order (``id`` is the arrival order) and deleted afterwards;
    ``inbound_updates`` -- written in the transaction of the update's effect -- is what makes
    the effect happen once, so a row processed again after a crash changes nothing.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "update_id"),
        Index("ix_inbox_chat_key_id", "chat_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_id: Mapped[str] = mapped_column(String(64))
    #: ``channel:chat id``: the unit of ordering (one chat's updates run one after another).
    chat_key: Mapped[str] = mapped_column(String(90))
    #: The update as the channel sent it (JSON text).
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]


class Conversation(Base):
    """Which step of a flow a chat user is in; in the database so it survives restarts."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(40), default="idle")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class LabelledExample(Base):
    """Coordinator corrections, kept as training data for ``hotline classify --retrain``."""

    __tablename__ = "labelled_examples"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(20), default="correction")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), default=None)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    created_at: Mapped[datetime]


class DigestRun(Base):
    """One row per (audience, period) sent, so scheduled digests go out once across restarts."""

    __tablename__ = "digest_runs"
    __table_args__ = (UniqueConstraint("audience", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    audience: Mapped[str] = mapped_column(String(60))
    period: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    messages: Mapped[int] = mapped_column(Integer, default=0)


class KeyValue(Base):
    """Small durable state (rotating channel tokens, scheduler marks)."""

    __tablename__ = "key_values"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


# Registered on ``Base.metadata`` with the rest (schema creation, migration checks).
from storage import pacing as _pacing  # noqa: E402, F401
