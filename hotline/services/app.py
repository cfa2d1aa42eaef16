"""Composition root: opens the database and builds the ``App`` a process passes down."""

from __future__ import annotations

from hotline.clock import Clock
from hotline.config import Settings
from hotline.deps import App, build_deps
from hotline.services.groups import sync_owner_groups
from storage.db import create_engine, create_schema, make_sessionmaker


async def open_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    create_tables: bool = False,
    sync_groups: bool = True,
) -> App:
    """Connect, optionally create the schema (tests, demo), and sync owner groups."""
    deps = build_deps(settings, clock)
    engine = create_engine(deps.settings.database_url, echo=deps.settings.database_echo)
    app = App(
        settings=deps.settings,
        clock=deps.clock,
        calendar=deps.calendar,
        taxonomy=deps.taxonomy,
        engine=engine,
        sessions=make_sessionmaker(engine),
    )
    if create_tables:
        await create_schema(engine)
    if sync_groups:
        async with app.uow() as uow:
            await sync_owner_groups(uow, app.taxonomy)
            await uow.commit()
    return app
