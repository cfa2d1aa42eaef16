"""Short-lived web credentials kept in the ``key_values`` table, stored only as hashes.

Sign-in links and sessions are small, few and short-lived, so they live in the existing
key/value table instead of a table of their own: the row key is a prefix plus the SHA-256 of
the secret token (a database dump reveals no usable token), the value a small JSON document,
``updated_at`` the creation time (used to purge old rows).

Taking a one-time token is a conditional ``DELETE``: of two concurrent requests presenting the
same link (two workers, a double click) exactly one sees a deleted row, so a link signs in once.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from storage.models import KeyValue
from storage.uow import UnitOfWork

#: ``secrets.token_urlsafe(32)``: 43 characters of the URL-safe alphabet.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_key(prefix: str, token: str) -> str:
    return prefix + hashlib.sha256(token.encode("ascii")).hexdigest()


def well_formed(token: str | None) -> bool:
    """Cheap shape check first, so garbage never reaches the database."""
    return bool(token) and TOKEN_RE.match(token or "") is not None


async def put(uow: UnitOfWork, key: str, value: dict[str, Any], now: datetime) -> None:
    uow.session.add(KeyValue(key=key, value=json.dumps(value, sort_keys=True), updated_at=now))
    await uow.flush()


async def get(uow: UnitOfWork, key: str) -> dict[str, Any] | None:
    row = (await uow.session.execute(select(KeyValue.value).where(KeyValue.key == key))).first()
    return _parse(row[0]) if row is not None else None


async def take(uow: UnitOfWork, key: str) -> dict[str, Any] | None:
    """Read and delete in one step; None if the row is gone (never existed, or taken)."""
    row = (await uow.session.execute(select(KeyValue.value).where(KeyValue.key == key))).first()
    if row is None:
        return None
    result = await uow.session.execute(
        delete(KeyValue).where(KeyValue.key == key, KeyValue.value == row[0])
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return _parse(row[0])


async def remove(uow: UnitOfWork, key: str) -> None:
    await uow.session.execute(delete(KeyValue).where(KeyValue.key == key))


async def purge(uow: UnitOfWork, prefix: str, older_than: datetime) -> None:
    """Forget rows created before ``older_than`` (all of them expired by then)."""
    await uow.session.execute(
        delete(KeyValue).where(KeyValue.key.startswith(prefix, autoescape=True),
                               KeyValue.updated_at < older_than)
    )


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def expired(value: dict[str, Any], now: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(value["expires_at"])) <= now
    except (KeyError, ValueError, TypeError):
        return True


def live_person_id(value: dict[str, Any] | None, now: datetime) -> int | None:
    """The ``person_id`` a stored value is for, or None if it is gone, expired or malformed.

    Sign-in links (``signin``) and sessions (``sessions``) both store
    ``{"person_id": ..., "expires_at": ...}``; this is the one reading of it they share.
    """
    if value is None or expired(value, now):
        return None
    person_id = value.get("person_id")
    return person_id if isinstance(person_id, int) else None


def until(now: datetime, delta: timedelta) -> str:
    return (now + delta).isoformat()
