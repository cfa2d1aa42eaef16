"""Message catalogues: every user-facing string in Vietnamese (default) and English.

Catalogues live in ``templates/locales/<lang>/<area>.toml`` -- one file per area so that the
engine, escalation and digest code each own theirs. Keys are dotted (``engine.welcome``).
Values are HTML-subset templates with ``{name}`` placeholders; parameters are escaped by
``markupsafe`` unless they are already ``Markup``, so user text can never inject markup.
"""

from __future__ import annotations

import html
import re
import tomllib
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from templates import LOCALES_DIR

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


@cache
def catalogue(lang: str, locales_dir: Path = LOCALES_DIR) -> dict[str, str]:
    messages: dict[str, str] = {}
    for file in sorted((locales_dir / lang).glob("*.toml")):
        _flatten("", tomllib.loads(file.read_text("utf-8")), messages)
    return messages


def normalise_language(lang: str | None) -> str:
    """Map a client hint (``en-US``, ``vi``, ``None``) to a supported language."""
    if lang:
        short = lang.split("-")[0].split("_")[0].lower()
        if short in LANGUAGES:
            return short
    return DEFAULT_LANGUAGE


def t(key: str, lang: str | None = None, /, **params: Any) -> Markup:
    """Translate ``key`` into ``lang`` and fill it; parameters are HTML-escaped.

    A key missing in ``lang`` falls back to Vietnamese, then to the key itself (a test checks
    that both catalogues have the same keys, so the fallbacks only protect against crashes).
    """
    language = normalise_language(lang)
    text = catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return Markup(text).format(**params) if params else Markup(text)


_TAG_RE = re.compile(r"<[^<>]+>")


def plain(markup: str) -> str:
    """Strip the HTML subset for channels without formatting (Zalo, console).

    Unlike ``Markup.striptags`` this keeps line breaks: lists must stay lists.
    """
    return html.unescape(_TAG_RE.sub("", str(markup)))


def format_local_date(value: datetime | date, lang: str | None, tz: str = "Asia/Ho_Chi_Minh") -> str:
    """Vietnamese users read dd/mm/yyyy; English users get the same order with the month name."""
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(tz)).date()
    if normalise_language(lang) == "en":
        return value.strftime("%d %b %Y")
    return value.strftime("%d/%m/%Y")


def format_local_datetime(value: datetime, lang: str | None, tz: str = "Asia/Ho_Chi_Minh") -> str:
    local = value.astimezone(ZoneInfo(tz))
    if normalise_language(lang) == "en":
        return local.strftime("%d %b %Y %H:%M")
    return local.strftime("%H:%M %d/%m/%Y")
