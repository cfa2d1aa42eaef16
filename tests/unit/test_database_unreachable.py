"""Which failures mean "the database is not there right now" (retry later, record nothing) and
which mean "this statement failed" (apologise, the update is done)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage.db import database_unreachable


def _wrapped(inner: BaseException) -> BaseException:
    """How SQLAlchemy hands a driver error up: a DBAPIError whose cause is the driver's."""
    try:
        try:
            raise inner
        except BaseException as error:
            raise DBAPIError("SELECT 1", None, error) from error
    except DBAPIError as outer:
        return outer


def test_a_refused_or_lost_connection_is_unreachable_however_deep() -> None:
    assert database_unreachable(ConnectionRefusedError(111, "refused"))
    assert database_unreachable(_wrapped(ConnectionResetError("reset by peer")))
    assert database_unreachable(_wrapped(asyncpg.exceptions.CannotConnectNowError("starting up")))
    assert database_unreachable(_wrapped(asyncpg.exceptions.AdminShutdownError("shutting down")))
    assert database_unreachable(_wrapped(asyncpg.InterfaceError("connection is closed")))


def test_a_failing_statement_is_not() -> None:
    assert not database_unreachable(ValueError("bad input"))
    assert not database_unreachable(IntegrityError("INSERT", None, Exception("duplicate key")))
    assert not database_unreachable(_wrapped(asyncpg.InterfaceError("cannot perform operation")))
