"""Owner groups come from the taxonomy file; the database mirrors them so people can join."""

from __future__ import annotations

from hotline.taxonomy import Taxonomy
from storage.models import OwnerGroup
from storage.uow import UnitOfWork


async def sync_owner_groups(uow: UnitOfWork, taxonomy: Taxonomy) -> None:
    existing = {g.code: g for g in await uow.people.groups()}
    for code, group in taxonomy.groups.items():
        row = existing.get(code)
        if row is None:
            uow.session.add(OwnerGroup(code=code, name_vi=group.name_vi, name_en=group.name_en))
        else:
            row.name_vi, row.name_en, row.active = group.name_vi, group.name_en, True
    for code, row in existing.items():
        if code not in taxonomy.groups:
            row.active = False  # kept for history; no new tickets are routed there
    await uow.flush()
