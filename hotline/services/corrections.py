"""Coordinator corrections as training data for the classifier (``hotline classify --retrain``)."""

from __future__ import annotations

from sqlalchemy import select

from hotline.config import Settings
from storage.models import LabelledExample


async def load_corrections(settings: Settings) -> list[tuple[str, str]]:
    """All stored corrections as (text, label), oldest first; the latest label per text wins."""
    from storage.db import create_engine, make_sessionmaker

    engine = create_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(LabelledExample.text, LabelledExample.label).order_by(LabelledExample.id)
            )
            latest: dict[str, str] = {}
            for text, label in rows:
                latest[text] = label
            return list(latest.items())
    except Exception as exc:  # no database yet: nothing to learn from
        from sqlalchemy.exc import OperationalError, ProgrammingError

        if isinstance(exc, (OperationalError, ProgrammingError)):
            return []
        raise
    finally:
        await engine.dispose()
