"""The dependency container: what services, callers and the app layer pass down.

There are no module-level sessions or singletons; a process (CLI command, bot runner, test)
creates one ``App`` (``hotline.services.app.open_app``) and passes it (or its ``Deps`` part) down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hotline.clock import Clock, SystemClock
from hotline.config import Settings, load_settings
from hotline.domain.calendar import BusinessCalendar
from hotline.taxonomy import Taxonomy, load_taxonomy
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
