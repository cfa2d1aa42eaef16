"""People: reporters register themselves; every other role comes from a single-use invite code."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from hotline.deps import Deps
from hotline.domain.enums import GROUP_ROLES, OrgKind, Role
from hotline.errors import InvalidInput
from hotline.i18n import LANGUAGES
from hotline.services import permissions as perm
from storage.models import Contact, Invite, Organisation, Person
from storage.uow import UnitOfWork

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud
_TAX_CODE_RE = re.compile(r"^\d{10}(-\d{3})?$")
MAX_NAME = 200
#: How long an invite code may be valid: an hour to thirty days.
MIN_INVITE_HOURS = 1
MAX_INVITE_HOURS = 720


def _hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def normalise_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def clean_name(value: str, what: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidInput(f"{what} is empty", key="error.empty_text")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"{what} is too long", key="error.name_too_long", limit=MAX_NAME)
    return name


def clean_tax_code(value: str | None) -> str | None:
    """Vietnamese tax codes are 10 digits, branches add -NNN; optional for non-enterprises."""
    if value is None or not value.strip():
        return None
    code = value.strip().replace(" ", "")
    if not _TAX_CODE_RE.match(code):
        raise InvalidInput("tax code must be 10 digits (or 10-3)", key="error.bad_tax_code")
    return code


async def touch_contact(
    uow: UnitOfWork, deps: Deps, channel: str, external_id: str, chat_id: str,
    display_name: str | None = None, *, group: bool = False,
) -> Contact:
    """The contact behind an inbound event from a private chat, created on first sight
    (without a person yet). A contact is a private chat only, so an event from a group
    (``group=True``) never creates one."""
    if group:
        raise ValueError("a contact is a private chat; a group event cannot make one")
    now = deps.clock.now()
    contact = await uow.people.contact(channel, external_id)
    if contact is None:
        contact = Contact(channel=channel, external_id=external_id, chat_id=chat_id,
                          display_name=display_name, active=True, created_at=now,
                          last_seen_at=now)
        uow.session.add(contact)
        await uow.flush()
    else:
        refresh_contact(contact, chat_id, display_name, now)
    return contact


#: ``last_seen_at`` is moved at most this often: it orders a person's channels, and writing it
#: on every message of a conversation would cost each message an UPDATE.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


def refresh_contact(contact: Contact, chat_id: str, display_name: str | None, now: datetime,
                    *, group: bool = False) -> None:
    """What an inbound event tells about a known contact. Only real changes are assigned: an
    assignment, even of the same value, makes the session flush the contact at commit.

    Group chats are public places: a message a person writes in a group (``group=True``)
    changes nothing here -- their notices keep going to their private chat, never the group.
    """
    if group:
        return
    if contact.chat_id != chat_id:
        contact.chat_id = chat_id
    if contact.last_seen_at is None or now - contact.last_seen_at >= LAST_SEEN_RESOLUTION:
        contact.last_seen_at = now
    if not contact.active:
        contact.active = True  # writing to us again means they unblocked the bot
    if display_name and contact.display_name != display_name:
        contact.display_name = display_name


async def register_reporter(
    uow: UnitOfWork,
    deps: Deps,
    contact: Contact,
    *,
    organisation_name: str,
    kind: OrgKind,
    contact_name: str,
    tax_code: str | None = None,
    language: str = "vi",
) -> Person:
    """First-time profile. Each registration is its own organisation: matching by name or tax
    code would let anyone read another organisation's tickets by claiming its identity."""
    if contact.person_id is not None:
        raise InvalidInput("already registered", key="error.already_registered")
    now = deps.clock.now()
    org = Organisation(name=clean_name(organisation_name, "organisation name"), kind=kind.value,
                       tax_code=clean_tax_code(tax_code), created_at=now)
    uow.session.add(org)
    await uow.flush()
    person = Person(display_name=clean_name(contact_name, "contact name"),
                    role=Role.REPORTER.value, organisation_id=org.id,
                    language=set_language_value(language), created_at=now)
    uow.session.add(person)
    await uow.flush()
    contact.person_id = person.id
    return person


def set_language_value(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidInput("unsupported language", key="error.bad_language",
                           languages=", ".join(LANGUAGES))
    return language


@dataclass(frozen=True)
class IssuedInvite:
    code: str
    invite: Invite


async def create_invite(
    uow: UnitOfWork,
    deps: Deps,
    role: Role,
    group_code: str | None = None,
    *,
    created_by: Person | None = None,
    ttl_hours: int | None = None,
) -> IssuedInvite:
    """Admins invite anyone; coordinators invite members, leads and leaders. The code is shown
    once; only its hash is stored."""
    if created_by is not None:
        allowed = created_by.role == Role.ADMIN.value or (
            created_by.role == Role.COORDINATOR.value
            and role in (Role.MEMBER, Role.LEAD, Role.LEADER)
        )
        perm.require(allowed, f"invite a {role.value}")
    if role == Role.REPORTER:
        raise InvalidInput("reporters register themselves", key="error.invite_reporter")
    group_id = None
    if role in GROUP_ROLES:
        if not group_code:
            raise InvalidInput(f"a {role.value} invite needs a group", key="error.invite_group")
        group = await uow.people.group(group_code)
        if group is None or not group.active:
            codes = ", ".join(sorted(g.code for g in await uow.people.groups() if g.active))
            raise InvalidInput(f"unknown group {group_code!r}; groups: {codes}",
                               key="error.unknown_group_of", code=group_code, codes=codes)
        group_id = group.id
    elif group_code:
        raise InvalidInput(f"a {role.value} has no group", key="error.invite_no_group")
    if ttl_hours is not None and not MIN_INVITE_HOURS <= ttl_hours <= MAX_INVITE_HOURS:
        raise InvalidInput(f"an invite is valid for {MIN_INVITE_HOURS} to {MAX_INVITE_HOURS} "
                           "hours", key="error.invite_hours", low=MIN_INVITE_HOURS,
                           high=MAX_INVITE_HOURS)
    now = deps.clock.now()
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    code = f"{raw[:5]}-{raw[5:]}"
    invite = Invite(
        code_hash=_hash(code), role=role.value, group_id=group_id,
        created_by_id=created_by.id if created_by else None, created_at=now,
        expires_at=now + timedelta(
            hours=ttl_hours if ttl_hours is not None else deps.settings.invite_ttl_hours),
    )
    uow.session.add(invite)
    await uow.flush()
    return IssuedInvite(code=code, invite=invite)


async def join(
    uow: UnitOfWork, deps: Deps, contact: Contact, code: str, *, display_name: str | None = None,
    language: str | None = None,
) -> Person:
    """Redeem an invite: the contact's person takes the invited role (created if new)."""
    from sqlalchemy import select

    now = deps.clock.now()
    if not code or not code.strip():
        raise InvalidInput("missing invite code", key="error.invite_missing")
    row = (
        await uow.session.execute(
            select(Invite).where(Invite.code_hash == _hash(code)).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        raise InvalidInput("unknown invite code", key="error.invite_invalid")
    if row.used_at is not None:
        raise InvalidInput("invite code already used", key="error.invite_used")
    if row.expires_at <= now:
        raise InvalidInput("invite code expired", key="error.invite_expired")
    person = await uow.people.get(contact.person_id) if contact.person_id else None
    if person is None:
        person = Person(display_name=clean_name(display_name or contact.display_name or
                                                contact.external_id, "name"),
                        role=row.role, language=language or deps.settings.default_language,
                        created_at=now)
        uow.session.add(person)
        await uow.flush()
        contact.person_id = person.id
    person.role = row.role
    person.group_id = row.group_id
    person.organisation_id = None if row.role != Role.REPORTER.value else person.organisation_id
    person.active = True
    row.used_by_id = person.id
    row.used_at = now
    return person


async def set_language(uow: UnitOfWork, person: Person, language: str) -> None:
    """The person's chat language (``vi`` or ``en``), kept for every later message."""
    person.language = set_language_value(language)


async def set_digest_opt_in(uow: UnitOfWork, person: Person, wanted: bool) -> None:
    """Whether the weekly digest of a reporter's open tickets reaches them (``/digest on|off``)."""
    person.digest_opt_in = wanted


async def cancel_exposed_invite(uow: UnitOfWork, deps: Deps, code: str) -> bool:
    """An invite code shown in a group chat is public: a live invite with that code expires now,
    so nobody who read it can redeem it. True if one was cancelled; the caller answers the same
    either way, so a group cannot be used to test codes."""
    from sqlalchemy import select

    if not code.strip() or len(code) > 64:
        return False
    now = deps.clock.now()
    row = (
        await uow.session.execute(
            select(Invite).where(Invite.code_hash == _hash(code)).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return False
    row.expires_at = now
    return True
