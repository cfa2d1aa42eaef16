"""Builders for people and tickets, going through the real services."""

from __future__ import annotations

import itertools

from hotline.deps import App
from hotline.domain.enums import OrgKind, Role
from hotline.services import people
from storage.models import Contact, Person, Ticket

_ids = itertools.count(1000)


async def make_reporter(
    app: App, *, name: str = "Nguyễn Văn An", org: str = "Công ty CP Số Việt",
    kind: OrgKind = OrgKind.ENTERPRISE, language: str = "vi", channel: str = "console",
) -> tuple[Person, Contact]:
    async with app.uow() as uow:
        ext = str(next(_ids))
        contact = await people.touch_contact(uow, app, channel, ext, ext, name)
        person = await people.register_reporter(
            uow, app, contact, organisation_name=org, kind=kind, contact_name=name,
            language=language,
        )
        await uow.commit()
        return person, contact


async def make_staff(
    app: App, role: Role, group: str | None = None, *, name: str | None = None,
    language: str = "vi", channel: str = "console",
) -> tuple[Person, Contact]:
    async with app.uow() as uow:
        issued = await people.create_invite(uow, app, role, group)
        ext = str(next(_ids))
        contact = await people.touch_contact(uow, app, channel, ext, ext, name or f"{role} {ext}")
        person = await people.join(uow, app, contact, issued.code, language=language)
        await uow.commit()
        return person, contact


async def file(app: App, reporter: Person, contact: Contact, text: str,
               category: str | None = "data", **kwargs: object) -> Ticket:
    from hotline.services import tickets

    async with app.uow() as uow:
        person = await uow.people.get(reporter.id)
        assert person is not None
        ticket = await tickets.file_ticket(
            uow, app, reporter=person, contact=contact, description=text, category=category,
            channel=contact.channel, **kwargs,  # type: ignore[arg-type]
        )
        await uow.commit()
        return ticket
