"""The category taxonomy as configuration: a TOML file shipped in the package, overridable.

An operator's file replaces the shipped one whole (not merged), so what is served is exactly
what the operator wrote; validation names the first bad key so the fix is obvious.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hotline.errors import ConfigError

FALLBACK_CATEGORY = "other"


@dataclass(frozen=True)
class OwnerGroup:
    code: str
    name_vi: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True)
class Category:
    code: str
    name_vi: str
    name_en: str
    scope_vi: str
    scope_en: str
    group: str
    sla_days: int

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi

    def scope(self, lang: str) -> str:
        return self.scope_en if lang == "en" else self.scope_vi


@dataclass(frozen=True)
class Taxonomy:
    groups: dict[str, OwnerGroup]
    categories: dict[str, Category]

    def category(self, code: str) -> Category:
        try:
            return self.categories[code]
        except KeyError:
            valid = ", ".join(self.categories)
            raise ConfigError(f"unknown category '{code}'; categories: {valid}",
                              key="error.unknown_category_of", code=code, codes=valid) from None

    def group(self, code: str) -> OwnerGroup:
        try:
            return self.groups[code]
        except KeyError:
            valid = ", ".join(self.groups)
            raise ConfigError(f"unknown owner group '{code}'; groups: {valid}",
                              key="error.unknown_group_of", code=code, codes=valid) from None

    def group_of(self, category_code: str) -> OwnerGroup:
        return self.group(self.category(category_code).group)

    @property
    def codes(self) -> list[str]:
        return list(self.categories)


_GROUP_FIELDS = {"name_vi": str, "name_en": str}
_CATEGORY_FIELDS = {
    "name_vi": str,
    "name_en": str,
    "scope_vi": str,
    "scope_en": str,
    "group": str,
    "sla_days": int,
}


def _check_fields(where: str, table: Any, fields: dict[str, type]) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"taxonomy: '{where}' must be a table")
    for name, kind in fields.items():
        if name not in table:
            raise ConfigError(f"taxonomy: '{where}.{name}' is missing")
        value = table[name]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"taxonomy: '{where}.{name}' must be a whole number")
        if kind is str and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"taxonomy: '{where}.{name}' must be non-empty text")
    for name in table:
        if name not in fields:
            raise ConfigError(f"taxonomy: unknown key '{where}.{name}'")


def parse_taxonomy(data: dict[str, Any]) -> Taxonomy:
    for key in data:
        if key not in ("groups", "categories"):
            raise ConfigError(f"taxonomy: unknown key '{key}'")
    raw_groups = data.get("groups")
    raw_categories = data.get("categories")
    if not isinstance(raw_groups, dict) or not raw_groups:
        raise ConfigError("taxonomy: 'groups' is missing or empty")
    if not isinstance(raw_categories, dict) or not raw_categories:
        raise ConfigError("taxonomy: 'categories' is missing or empty")
    groups: dict[str, OwnerGroup] = {}
    for code, table in raw_groups.items():
        _check_fields(f"groups.{code}", table, _GROUP_FIELDS)
        groups[code] = OwnerGroup(code=code, **table)
    categories: dict[str, Category] = {}
    for code, table in raw_categories.items():
        _check_fields(f"categories.{code}", table, _CATEGORY_FIELDS)
        if table["group"] not in groups:
            raise ConfigError(
                f"taxonomy: 'categories.{code}.group' names unknown group '{table['group']}'"
            )
        if not 1 <= table["sla_days"] <= 365:
            raise ConfigError(f"taxonomy: 'categories.{code}.sla_days' must be 1..365")
        categories[code] = Category(code=code, **table)
    if FALLBACK_CATEGORY not in categories:
        raise ConfigError(f"taxonomy: 'categories.{FALLBACK_CATEGORY}' is required (triage)")
    return Taxonomy(groups=groups, categories=categories)


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Load the operator's file if given, else the shipped default."""
    if path is None:
        text = resources.files("hotline.data").joinpath("taxonomy.toml").read_text("utf-8")
        source = "built-in taxonomy"
    else:
        file = Path(path)
        try:
            text = file.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"taxonomy file {file} cannot be read: {exc.strerror}") from None
        source = str(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"taxonomy file {source} is not valid TOML: {exc}") from None
    return parse_taxonomy(data)
