"""Owner groups come from the taxonomy file; the database mirrors them so people can join."""

from __future__ import annotations

from sqlalchemy import update

from hotline.taxonomy import Taxonomy
from storage.db import upsert_insert
from storage.models import OwnerGroup
from storage.uow import UnitOfWork


async def sync_owner_groups(uow: UnitOfWork, taxonomy: Taxonomy) -> None:
    """Upsert every group of the taxonomy, retire the ones it no longer lists.

    Every process syncs at start-up, and ``hotline run --workers N`` starts N at once on what
    may be a fresh database: an upsert lets them race (the second waits for the first and
    updates its rows) where a read-then-insert failed one worker on the unique group code.
    Groups are written in the taxonomy's order, so two syncs never lock rows in opposite order.
    Retired groups are kept for history; no new tickets are routed there.
    """
    table = OwnerGroup.__table__
    rows = [{"code": code, "name_vi": group.name_vi, "name_en": group.name_en, "active": True}
            for code, group in taxonomy.groups.items()]
    if rows:
        stmt = upsert_insert(uow.session, table).values(rows)
        await uow.session.execute(stmt.on_conflict_do_update(
            index_elements=[table.c.code],
            set_={"name_vi": stmt.excluded.name_vi, "name_en": stmt.excluded.name_en,
                  "active": True}))
    await uow.session.execute(
        update(table).where(table.c.code.not_in(list(taxonomy.groups)), table.c.active.is_(True))
        .values(active=False))
