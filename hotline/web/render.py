"""Server-side HTML: Jinja2 templates from ``templates/web`` with escaping forced on.

Autoescaping is on for every template whatever its extension (Jinja only guesses it from
``.html``), and undefined names fail loudly, so a typo cannot silently print nothing. Texts
come from the ``web`` catalogue through ``t``, whose parameters are escaped too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from hotline.config import Settings
from hotline.digests.kinds import kinds_from_json
from hotline.digests.render import kinds_detail, kinds_headline
from hotline.i18n import format_local_date, format_local_datetime, normalise_language, t
from hotline.taxonomy import Taxonomy
from templates import TEMPLATES_DIR

WEB_TEMPLATES = TEMPLATES_DIR / "web"
STATIC_DIR = WEB_TEMPLATES / "static"
DASH = "—"


class Fmt:
    """Formatting in the reader's language and the programme's time zone."""

    def __init__(self, lang: str, tz: str, taxonomy: Taxonomy) -> None:
        self.lang = normalise_language(lang)
        self.tz = tz
        self.taxonomy = taxonomy

    def t(self, key: str, /, **params: Any) -> Markup:
        return t(key, self.lang, **params)

    def date(self, value: datetime | date | None) -> str:
        return DASH if value is None else format_local_date(value, self.lang, self.tz)

    def datetime(self, value: datetime | None) -> str:
        return DASH if value is None else format_local_datetime(value, self.lang, self.tz)

    def num(self, value: float | int | None, digits: int = 1) -> str:
        if value is None:
            return DASH
        if isinstance(value, int):
            text = f"{value:,}"
            return text.replace(",", ".") if self.lang == "vi" else text
        text = f"{value:,.{digits}f}"
        if self.lang == "vi":
            text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
        return text

    def pct(self, value: float | None) -> str:
        return DASH if value is None else f"{self.num(value, 1)} %"

    def state(self, value: str) -> Markup:
        return self.t(f"state.{value}")

    def rag(self, value: str) -> Markup:
        return self.t(f"rag.{value}")

    def kind(self, value: str) -> Markup:
        return self.t(f"org_kind.{value}")

    def kinds_headline(self, kinds: Mapping[str, Any]) -> Markup:
        """The digest's sentence about kinds, from the page data (same words as the digest)."""
        return kinds_headline(kinds_from_json(kinds), self.lang, self.tz)

    def kinds_detail(self, kinds: Mapping[str, Any]) -> Markup:
        return kinds_detail(kinds_from_json(kinds), self.lang)

    def priority(self, value: str) -> Markup:
        return self.t(f"priority.{value}")

    def event(self, kind: str) -> Markup:
        return self.t(f"engine.event.{kind}")

    def category(self, code: str) -> str:
        cat = self.taxonomy.categories.get(code)
        return cat.name(self.lang) if cat is not None else code

    def group(self, code: str | None, names: Any = None) -> str:
        if names is not None:
            return str(names(self.lang)) if callable(names) else str(names)
        group = self.taxonomy.groups.get(code or "")
        return group.name(self.lang) if group is not None else (code or DASH)

    def name(self, vi: str, en: str) -> str:
        return en if self.lang == "en" else vi


class Renderer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = Environment(
            loader=FileSystemLoader(str(WEB_TEMPLATES)),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )

    def render(self, name: str, fmt: Fmt, **context: Any) -> str:
        template = self.env.get_template(name)
        return template.render(fmt=fmt, t=fmt.t, lang=fmt.lang, **context)
