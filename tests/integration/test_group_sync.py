"""Owner groups mirror the taxonomy file, also when several processes start at once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, select

from hotline.deps import App
from hotline.services.groups import sync_owner_groups
from storage.models import OwnerGroup


async def groups(app: App) -> dict[str, tuple[str, str, bool]]:
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(OwnerGroup))).scalars()
        return {g.code: (g.name_vi, g.name_en, g.active) for g in rows}


async def sync(app: App, taxonomy: Any) -> None:
    async with app.uow() as uow:
        await sync_owner_groups(uow, taxonomy)
        await uow.commit()


async def test_start_up_mirrors_the_taxonomy(app: App) -> None:
    stored = await groups(app)
    assert set(stored) == set(app.taxonomy.groups)
    assert all(active for _, _, active in stored.values())
    assert stored["moj"][:2] == (app.taxonomy.groups["moj"].name_vi, app.taxonomy.groups["moj"].name_en)


async def test_renamed_retired_and_returning_groups(app: App) -> None:
    before = await groups(app)
    ids = await _ids(app)
    renamed = {code: SimpleNamespace(name_vi=g.name_vi, name_en=g.name_en)
               for code, g in app.taxonomy.groups.items() if code != "moha"}
    renamed["mof"] = SimpleNamespace(name_vi="Bộ Tài chính (mới)", name_en="Ministry of Finance (new)")
    await sync(app, SimpleNamespace(groups=renamed))
    after = await groups(app)
    assert after["moha"] == (*before["moha"][:2], False)  # kept for history, no longer active
    assert after["mof"] == ("Bộ Tài chính (mới)", "Ministry of Finance (new)", True)
    await sync(app, app.taxonomy)
    assert await groups(app) == before and await _ids(app) == ids  # same rows, not new ones


async def test_processes_starting_together_on_a_fresh_database_all_succeed(app: App) -> None:
    """``hotline run --workers N``: every worker syncs at start; on PostgreSQL they race."""
    async with app.uow() as uow:
        await uow.session.execute(delete(OwnerGroup))
        await uow.commit()
    await asyncio.gather(*(sync(app, app.taxonomy) for _ in range(4)))
    stored = await groups(app)
    assert set(stored) == set(app.taxonomy.groups) and all(a for _, _, a in stored.values())


async def _ids(app: App) -> dict[str, int]:
    async with app.uow() as uow:
        return dict((await uow.session.execute(select(OwnerGroup.code, OwnerGroup.id))).all())
