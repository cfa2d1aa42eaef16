"""The Official Account's rotating token pair, kept in the database and refreshed one at a time.

An OA access token lives about 25 hours. Refreshing it consumes the refresh token: the answer
carries a new refresh token and the old one is dead. So:

- the pair lives in one ``key_values`` row (JSON: access token, refresh token, expiry), and a
  refresh writes the new pair in the same transaction that read the old one -- a restart (or
  another worker) always finds the newest refresh token, never a spent one;
- refreshes are serialised across processes: on PostgreSQL the transaction holds
  ``SELECT ... FOR UPDATE`` on the row while it calls the token endpoint; on SQLite every
  transaction already starts with ``BEGIN IMMEDIATE`` (``storage.db``), which takes the
  database's write lock. Inside the lock the row is read again: if another worker refreshed
  meanwhile, its fresh token is used and the endpoint is not called (a second call with the
  spent refresh token would fail and strand the OA);
- within one process an ``asyncio.Lock`` keeps coroutines from queueing on the database lock.

The first refresh token comes from the environment (``HOTLINE_ZALO_OA_REFRESH_TOKEN``) and seeds
the row; later the row wins, because the environment still holds the spent seed. When the
operator re-authorises the OA and puts a *new* refresh token in the environment, its
fingerprint differs from the one recorded at seeding, and the row is re-seeded from it.

Known limit: if the token endpoint answered but the commit then failed (database gone at that
instant), the new pair is lost and the OA must be re-authorised; the window is one round trip.
The refresh runs inside a write transaction, so on SQLite it pauses other writers for at most
the OAuth timeout, once a day; after a failed refresh no new attempt is made for
``failure_cooldown`` seconds while the current access token still works.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.zalo.oa_api import ZaloOAuthClient
from hotline.deps import App
from hotline.errors import ConfigError
from storage.db import is_postgres
from storage.models import KeyValue

log = logging.getLogger(__name__)

TOKEN_KEY = "zalo_oa.tokens"


def fingerprint(secret: str) -> str:
    """Identifies a seed token without storing it twice in clear."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class TokenState:
    access_token: str | None
    refresh_token: str
    expires_at: datetime | None  # None: unknown (seeded access token), used until refused
    seed: str | None = None
    refreshed_at: datetime | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "seed": self.seed,
                "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> TokenState:
        data: dict[str, Any] = json.loads(raw)

        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value) if value else None

        return cls(
            access_token=data.get("access_token") or None,
            refresh_token=data["refresh_token"],
            expires_at=when("expires_at"),
            seed=data.get("seed"),
            refreshed_at=when("refreshed_at"),
        )


class TokenUnavailable(Exception):
    """No usable access token: the refresh failed (message text is safe to store)."""


class OATokenManager:
    """Hands out a valid access token; refreshes before expiry and when the API refuses one."""

    def __init__(
        self,
        app: App,
        oauth: ZaloOAuthClient,
        *,
        app_id: str,
        app_secret: str,
        seed_refresh_token: str | None = None,
        seed_access_token: str | None = None,
        refresh_margin: timedelta = timedelta(hours=1),
        failure_cooldown: float = 60.0,
        key: str = TOKEN_KEY,
    ) -> None:
        if not app_id or not app_secret:
            raise ConfigError("Zalo OA needs HOTLINE_ZALO_OA_APP_ID and HOTLINE_ZALO_OA_APP_SECRET")
        self.app = app
        self.oauth = oauth
        self.app_id = app_id
        self.app_secret = app_secret
        self.seed_refresh_token = seed_refresh_token
        self.seed_access_token = seed_access_token
        self.refresh_margin = refresh_margin
        self.failure_cooldown = failure_cooldown
        self.key = key
        self._lock = asyncio.Lock()
        self._cached: TokenState | None = None
        self._failed_at: float | None = None
        self.refreshes = 0  # successful calls to the token endpoint by this manager

    # --- public --------------------------------------------------------------------------------
    async def access_token(self) -> str:
        """A token to call the API with, refreshed first if it expires within the margin."""
        state = self._cached
        if state is None or not state.access_token or self._due(state):
            async with self._lock:
                state = await self._ensure(rejected=None)
        assert state.access_token is not None
        return state.access_token

    async def refresh(self, rejected: str | None) -> str:
        """A new token after the API refused ``rejected``; refreshes unless another worker did."""
        async with self._lock:
            state = await self._ensure(rejected=rejected)
        assert state.access_token is not None
        return state.access_token

    async def refresh_if_due(self) -> bool:
        """For a periodic job: refresh ahead of expiry even when nothing is being sent, so the
        refresh token (valid about three months) never lapses on a quiet OA. True if refreshed."""
        before = self.refreshes
        await self.access_token()
        return self.refreshes > before

    async def current(self) -> TokenState | None:
        """The stored pair (tests, ``hotline`` diagnostics); never logged."""
        async with self.app.sessions() as session:
            row = await session.get(KeyValue, self.key)
            return TokenState.from_json(row.value) if row else None

    # --- internals -----------------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.app.clock.now()

    def _due(self, state: TokenState) -> bool:
        return state.expires_at is not None and state.expires_at - self.refresh_margin <= self._now()

    def _cooling_down(self) -> bool:
        if self._failed_at is None:
            return False
        return asyncio.get_running_loop().time() - self._failed_at < self.failure_cooldown

    async def _ensure(self, *, rejected: str | None) -> TokenState:
        """Read (and seed, and if needed refresh) the pair under the cross-process lock."""
        try:
            async with self.app.sessions() as session, session.begin():
                row, state = await self._load(session)
                usable = bool(state.access_token) and state.access_token != rejected
                if usable and (not self._due(state) or self._cooling_down()):
                    # Fresh enough -- or due, but the endpoint failed a moment ago and the
                    # current token still works. Commits a seeding, if this call seeded.
                    self._cached = state
                    return state
                try:
                    grant = await self.oauth.refresh(
                        app_id=self.app_id, app_secret=self.app_secret, refresh_token=state.refresh_token
                    )
                except Exception as error:  # transport, HTTP, OAuth refusal: all the same here
                    raise _RefreshFailed(state, usable, error) from None
                now = self._now()
                fresh = TokenState(
                    access_token=grant.access_token,
                    refresh_token=grant.refresh_token,
                    expires_at=now + timedelta(seconds=grant.expires_in),
                    seed=state.seed,
                    refreshed_at=now,
                )
                row.value = fresh.to_json()
                row.updated_at = now
        except _RefreshFailed as failed:
            self._failed_at = asyncio.get_running_loop().time()
            if failed.usable and not self._expired(failed.state):
                log.warning("zalo oa: proactive token refresh failed (%s); using the current token",
                            failed.error)
                self._cached = failed.state
                return failed.state
            self._cached = None
            log.error("zalo oa: token refresh failed: %s", failed.error)
            raise TokenUnavailable(f"token refresh failed: {failed.error}") from None
        # Committed: only now is the new pair ours to use.
        self._failed_at = None
        self.refreshes += 1
        self._cached = fresh
        log.info("zalo oa: access token refreshed, valid until %s", now.isoformat())
        return fresh

    def _expired(self, state: TokenState) -> bool:
        return state.expires_at is not None and state.expires_at <= self._now()

    async def _load(self, session: AsyncSession) -> tuple[KeyValue, TokenState]:
        """The locked row and its pair, seeding it from the environment when there is none yet
        or when the operator configured a new refresh token after re-authorising the OA."""
        stmt = select(KeyValue).where(KeyValue.key == self.key)
        if is_postgres(self.app.engine):
            stmt = stmt.with_for_update()
        row = (await session.execute(stmt)).scalar_one_or_none()
        if row is None and self.seed_refresh_token and is_postgres(self.app.engine):
            # Two workers seeding at once: insert-or-nothing, then lock whichever row won.
            await session.execute(
                pg_insert(KeyValue)
                .values(key=self.key, value=self._seed_state().to_json(), updated_at=self._now())
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = (await session.execute(stmt)).scalar_one_or_none()
        if row is not None:
            state = TokenState.from_json(row.value)
            if not self.seed_refresh_token or state.seed == fingerprint(self.seed_refresh_token):
                return row, state
            log.warning("zalo oa: a new refresh token was configured; replacing the stored pair")
        elif not self.seed_refresh_token:
            raise ConfigError(
                "Zalo OA has no token yet: set HOTLINE_ZALO_OA_REFRESH_TOKEN from the OA authorisation"
            )
        state = self._seed_state()
        if row is None:
            row = KeyValue(key=self.key, value=state.to_json(), updated_at=self._now())
            session.add(row)
        else:
            row.value = state.to_json()
            row.updated_at = self._now()
        return row, state

    def _seed_state(self) -> TokenState:
        assert self.seed_refresh_token
        return TokenState(
            access_token=self.seed_access_token or None,
            refresh_token=self.seed_refresh_token,
            expires_at=None,
            seed=fingerprint(self.seed_refresh_token),
        )


class _RefreshFailed(Exception):
    def __init__(self, state: TokenState, usable: bool, error: BaseException) -> None:
        super().__init__(str(error))
        self.state = state
        self.usable = usable
        self.error = error
