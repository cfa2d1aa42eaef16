"""Follow / unfollow of the Official Account, applied straight to the contact row.

An unfollow is not a conversation turn -- nothing to answer, nothing to de-duplicate -- so it
does not go through the engine: the contact is marked inactive in its own small transaction
and the dispatcher stops writing to it (Zalo would refuse with -213 anyway). A follow makes an
existing contact active again; a first follow creates nothing, the person registers by writing.
"""

from __future__ import annotations

import logging

from hotline.deps import App

log = logging.getLogger(__name__)


async def set_contact_active(app: App, channel: str, external_id: str, active: bool) -> bool:
    """True if a contact existed (and now has ``active``)."""
    async with app.uow() as uow:
        contact = await uow.people.contact(channel, external_id)
        if contact is None:
            return False
        if contact.active != active:
            contact.active = active
            await uow.commit()
            log.info("%s contact %s is now %s", channel, contact.id, "active" if active else "inactive")
        return True
