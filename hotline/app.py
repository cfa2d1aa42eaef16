"""Composition root: builds the dependencies once and hands them to whoever needs them.

There are no module-level sessions or singletons; a process (CLI command, bot runner, test)
creates one ``App`` and passes it (or its ``Deps`` part) down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from escalation.calendar import BusinessCalendar
from hotline.clock import Clock, SystemClock
from hotline.config import Settings, load_settings
from hotline.taxonomy import Taxonomy, load_taxonomy
from storage.db import create_engine, create_schema, make_sessionmaker
from storage.uow import UnitOfWork

if TYPE_CHECKING:
    from hotline.classifier import Classifier


@dataclass
class Deps:
    """What services need besides a unit of work: pure, I/O-free collaborators."""

    settings: Settings
    clock: Clock
    calendar: BusinessCalendar
    taxonomy: Taxonomy


@dataclass
class App(Deps):
    engine: AsyncEngine = field(repr=False, default=None)  # type: ignore[assignment]
    sessions: async_sessionmaker[AsyncSession] = field(repr=False, default=None)  # type: ignore[assignment]
    _classifier: Classifier | None = field(default=None, repr=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def classifier(self) -> Classifier:
        """Trained on first use (about a second), then kept for the process."""
        if self._classifier is None:
            from hotline.classifier import load_classifier

            self._classifier = load_classifier(
                cache_dir=self.settings.classifier_cache_dir, taxonomy=self.taxonomy
            )
        return self._classifier

    async def close(self) -> None:
        await self.engine.dispose()


def build_deps(settings: Settings | None = None, clock: Clock | None = None) -> Deps:
    settings = settings or load_settings()
    return Deps(
        settings=settings,
        clock=clock or SystemClock(),
        calendar=BusinessCalendar.from_settings(settings),
        taxonomy=load_taxonomy(settings.taxonomy_file),
    )


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
        from hotline.services.groups import sync_owner_groups

        async with app.uow() as uow:
            await sync_owner_groups(uow, app.taxonomy)
            await uow.commit()
    return app
