"""What one handler call sees: the event, the caller, their conversation, and the reply buffer.

A ``Context`` lives for exactly one inbound event and one database transaction. Handlers read
the caller from it, call services with ``ctx.uow`` / ``ctx.app``, move the conversation to its
next step, and append replies; the engine writes the replies to the outbox and commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup

from hotline.deps import App
from hotline.domain.enums import Role
from hotline.errors import Forbidden, HotlineError
from hotline.i18n import format_local_date, t
from hotline.messages import Button, InboundEvent, OutboundMessage
from storage.conversation_state import IDLE, ConversationState
from storage.models import Contact, Person
from storage.uow import UnitOfWork

#: Rows of buttons, already localised.
Keyboard = tuple[tuple[Button, ...], ...]


class NotRegistered(HotlineError):
    """The caller must finish the first-time profile (/start) before doing this."""

    key = "engine.not_registered"


@dataclass
class Context:
    app: App
    uow: UnitOfWork
    event: InboundEvent
    contact: Contact
    person: Person | None
    conv: ConversationState
    lang: str
    now: datetime
    #: Tickets the caller filed today, loaded with the caller (None: not known, count it).
    filed_today: int | None = None
    replies: list[OutboundMessage] = field(default_factory=list)

    # --- replies ---------------------------------------------------------------------------

    def text(self, key: str, /, **params: Any) -> Markup:
        return t(key, self.lang, **params)

    def button(self, key: str, payload: str, /, **params: Any) -> Button:
        """Button labels are plain text on every channel: parameters are filled, not escaped."""
        return Button(label=self.text(key, **params).unescape(), payload=payload)

    def say(self, key: str, /, *, buttons: Iterable[Sequence[Button]] = (), **params: Any) -> None:
        self.say_markup(self.text(key, **params), buttons=buttons)

    def say_markup(self, text: str, *, buttons: Iterable[Sequence[Button]] = ()) -> None:
        self.replies.append(
            OutboundMessage(
                channel=self.event.channel,
                chat_id=self.event.chat_id,
                text=str(text),
                buttons=tuple(tuple(row) for row in buttons if row),
            )
        )

    def date(self, value: datetime) -> str:
        """Local calendar date in the caller's language (dd/mm/yyyy for Vietnamese)."""
        return format_local_date(value, self.lang, self.app.settings.timezone)

    # --- conversation ----------------------------------------------------------------------

    @property
    def step(self) -> str:
        return self.conv.step or IDLE

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.conv.data or {})

    def set_step(self, step: str, **data: Any) -> None:
        """Replace step and data; the dict is reassigned (a change is found by comparing with
        what was loaded, so in-place edits of nested values would be missed).

        The chosen language of a not yet registered caller survives every step change.
        """
        keep = {"lang": self.conv.data["lang"]} if self.conv.data and "lang" in self.conv.data else {}
        self.conv.step = step
        self.conv.data = keep | data

    def clear_step(self) -> None:
        self.set_step(IDLE)

    # --- who is calling --------------------------------------------------------------------

    def require_person(self) -> Person:
        if self.person is None:
            raise NotRegistered("not registered")
        return self.person

    def require_reporter(self) -> Person:
        person = self.require_person()
        if person.role != Role.REPORTER.value:
            raise Forbidden("reporters only", key="engine.reporters_only")
        return person

    def require_staff(self) -> Person:
        """Members, leads, coordinators and admins: the people who work tickets."""
        person = self.person
        if person is None or person.role not in {
            Role.MEMBER.value, Role.LEAD.value, Role.COORDINATOR.value, Role.ADMIN.value
        }:
            raise Forbidden("working-group members only", key="engine.staff_only")
        return person

    def require_coordinator(self) -> Person:
        person = self.person
        if person is None or person.role not in {Role.COORDINATOR.value, Role.ADMIN.value}:
            raise Forbidden("coordinators only", key="engine.coordinators_only")
        return person


def stale() -> HotlineError:
    """The one answer for a button that no longer applies (or never did): nothing is changed."""
    return HotlineError("stale or forged button", key="error.stale_button")
