"""All configuration, from environment variables prefixed ``HOTLINE_`` (or a ``.env`` file).

Secrets (bot tokens, webhook secrets) only ever come from here, never from the repository.
Validation errors are turned into one sentence naming the bad variable (``load_settings``).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hotline.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///hotline.db"


def default_cache_dir() -> Path:
    """The per-user cache folder (XDG), so nothing is written into the working directory."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "blocker-hotline"


def _split_dates(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HOTLINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage -------------------------------------------------------------------------------
    database_url: str = DEFAULT_DATABASE_URL
    database_echo: bool = False

    # --- locale and calendar -------------------------------------------------------------------
    default_language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    work_start_hour: int = Field(8, ge=0, le=23)
    work_end_hour: int = Field(17, ge=1, le=24)
    #: Extra days off decided by the government or the operator (comma-separated ISO dates).
    extra_days_off: Annotated[list[date], NoDecode] = Field(default_factory=list)
    #: Saturdays (or other days) worked to make up for a moved day off.
    makeup_working_days: Annotated[list[date], NoDecode] = Field(default_factory=list)

    # --- taxonomy and classification -----------------------------------------------------------
    taxonomy_file: Path | None = None
    classifier_threshold: float = Field(0.55, ge=0.0, le=1.0)
    #: Similar-report suggestions (``hotline similar``): the score from which an open ticket is
    #: offered to a reporter at intake and to coordinators as a likely duplicate (chosen on the
    #: tuning pairs, reported on the held-out ones: see bench/RESULTS.md), and how long a
    #: resolved ticket is still offered.
    similar_threshold: float = Field(0.34, gt=0.0, le=1.0)
    similar_resolved_days: int = Field(30, ge=0, le=3650)
    #: Fitted classifier models (keyed by a hash of their training data, so never stale) and the
    #: corrections snapshot of the last ``classify --retrain``. Training takes seconds; loading a
    #: cached model milliseconds. Only the operator should be able to write here (pickles).
    classifier_cache_dir: Path | None = Field(default_factory=lambda: default_cache_dir() / "classifier")

    # --- ticket rules --------------------------------------------------------------------------
    first_response_business_days: float = Field(1.0, gt=0)
    critical_sla_days: int = Field(3, ge=1)
    auto_close_business_days: int = Field(5, ge=1)
    reopen_window_business_days: int = Field(10, ge=0)
    #: Days after a ticket is resolved (or closed) during which its reporter may rate it or
    #: change the rating, from /rate, /status or the reminder.
    rating_window_days: int = Field(30, ge=1, le=365)
    #: Days after resolution without a rating before the one reminder asks for it.
    rating_reminder_days: int = Field(3, ge=1, le=365)
    daily_report_limit: int = Field(10, ge=1)
    max_message_chars: int = Field(4000, ge=100)
    invite_ttl_hours: int = Field(72, ge=1, le=720)

    # --- escalation ----------------------------------------------------------------------------
    reminder_fraction: float = Field(0.5, gt=0, lt=1)
    l1_fraction: float = Field(0.75, gt=0, lt=1)
    l1_no_update_business_days: float = Field(3.0, gt=0)
    l3_business_days_overdue: float = Field(5.0, gt=0)
    red_alert_overdue_threshold: int = Field(3, ge=0)
    sweep_interval_seconds: int = Field(60, ge=5)

    # --- digests -------------------------------------------------------------------------------
    weekly_digest_weekday: int = Field(0, ge=0, le=6)  # Monday
    weekly_digest_hour: int = Field(8, ge=0, le=23)
    monthly_report_day: int = Field(10, ge=1, le=14)
    output_dir: Path = Path("out")

    # --- Telegram ------------------------------------------------------------------------------
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    webhook_secret: SecretStr | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(8080, ge=1, le=65535)
    webhook_path: str = "/telegram/webhook"
    public_base_url: str | None = None
    #: How much lower the inbox processor runs than the webhook (PostgreSQL, Linux): the
    #: acknowledgements channels wait for come first when the CPU is short (0 = same priority).
    inbox_processor_nice: int = Field(5, ge=0, le=19)
    #: Where the inbox processor runs on PostgreSQL: a thread of the worker (it shares the
    #: worker's core: acknowledgements stay fast and more workers add throughput), or a process
    #: of its own per worker (``process``: about 1.7x the updates/s of one worker, when the
    #: machine has a core to spare for it; measured in bench/RESULTS.md). SQLite always
    #: processes in the worker.
    inbox_processing: Literal["thread", "process"] = "thread"

    # --- outbox dispatcher ---------------------------------------------------------------------
    outbox_per_chat_interval: float = Field(1.0, ge=0)
    outbox_group_per_minute: int = Field(20, ge=1)
    outbox_global_per_second: float = Field(30.0, gt=0)
    outbox_max_attempts: int = Field(8, ge=1)
    outbox_backoff_base: float = Field(1.0, gt=0)
    outbox_backoff_cap: float = Field(300.0, gt=0)

    # --- housekeeping (hotline.services.housekeeping; daily job and ``hotline db prune``) --------
    #: Days an inbound update id is remembered for de-duplication. Telegram redelivers for at
    #: most ~24 h, so the minimum of 2 always catches a redelivery; an update redelivered after
    #: the window would be processed again.
    inbound_retention_days: int = Field(14, ge=2, le=3650)
    #: Days ``sent``/``failed``/``undeliverable`` outbox rows are kept as transport history
    #: (``pending`` rows are never pruned). At least a week, so a failed message can still be
    #: looked at and re-queued after a long weekend.
    outbox_retention_days: int = Field(90, ge=7, le=3650)

    # --- Zalo ----------------------------------------------------------------------------------
    zalo_bot_token: SecretStr | None = None
    zalo_bot_api_url: str = "https://bot-api.zapps.me"
    zalo_bot_webhook_secret: SecretStr | None = None
    zalo_oa_app_id: str | None = None
    zalo_oa_secret_key: SecretStr | None = None
    zalo_oa_api_url: str = "https://openapi.zalo.me"
    zalo_oa_oauth_url: str = "https://oauth.zaloapp.com"
    #: Bot Platform intake: long polling (no public URL needed) or webhook.
    zalo_bot_mode: Literal["polling", "webhook"] = "polling"
    zalo_bot_webhook_path: str = "/zalo/bot/webhook"
    #: App secret (``secret_key`` header of the OAuth token endpoint); not the OA secret key,
    #: which only signs webhooks.
    zalo_oa_app_secret: SecretStr | None = None
    #: First refresh token from the OA authorisation; rotated tokens then live in the database.
    zalo_oa_refresh_token: SecretStr | None = None
    zalo_oa_access_token: SecretStr | None = None
    zalo_oa_webhook_path: str = "/zalo/oa/webhook"
    zalo_oa_button_type: Literal["oa.query.hide", "oa.query.show"] = "oa.query.hide"
    zalo_oa_rate_limit_backoff: float = Field(60.0, gt=0)
    zalo_oa_refresh_margin_seconds: int = Field(3600, ge=0)

    # --- web -----------------------------------------------------------------------------------
    #: Signs session cookies; when unset, a random secret is created once and kept in the
    #: database, so every worker shares it and sessions survive restarts.
    web_session_secret: SecretStr | None = None
    #: Lifetime of a one-time sign-in link sent by ``/web`` in the bot.
    web_signin_ttl_minutes: int = Field(10, ge=1, le=1440)
    web_session_hours: int = Field(12, ge=1, le=24 * 30)
    #: Public status lookups per client and minute (the check code stops enumeration; this
    #: stops guessing).
    web_status_per_minute: int = Field(30, ge=1, le=10000)
    #: Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated).
    web_forwarded_allow_ips: str = "127.0.0.1,::1"
    #: Longest time the public board and dashboard figures are reused without new events
    #: (overdue counts move with the clock alone).
    web_cache_seconds: int = Field(60, ge=0, le=3600)

    @field_validator("extra_days_off", "makeup_working_days", mode="before")
    @classmethod
    def _dates(cls, value: object) -> object:
        return _split_dates(value)

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in ("vi", "en"):
            raise ValueError("must be 'vi' or 'en'")
        return value


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; one clear sentence on a bad value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "HOTLINE_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"invalid configuration {name}: {first['msg']}") from None
