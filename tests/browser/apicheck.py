"""A small JSON Schema checker for the subset ``docs/openapi.json`` uses.

No schema library is installed, and the API's schemas need only: ``type`` (with ``null`` in a
list), ``properties``/``required``/``additionalProperties``, ``items``, ``enum``, ``$ref``,
``allOf``, ``oneOf``, ``minimum`` and the ``date``/``date-time`` formats. Errors name the path
inside the document, so a failing test says which field drifted.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def load() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text("utf-8"))


class Checker:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            parts = schema["$ref"].lstrip("#/").split("/")
            node: Any = self.doc
            for part in parts:
                node = node[part]
            schema = node
        return schema

    def errors(self, value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
        schema = self.resolve(schema)
        out: list[str] = []
        if "allOf" in schema:
            for part in schema["allOf"]:
                out += self.errors(value, part, where)
            return out
        if "oneOf" in schema:
            matching = [s for s in schema["oneOf"] if not self.errors(value, s, where)]
            return [] if len(matching) == 1 else [f"{where}: matches {len(matching)} of oneOf"]
        types = schema.get("type")
        if types is not None:
            allowed = types if isinstance(types, list) else [types]
            if not any(_is(value, t) for t in allowed):
                return [f"{where}: {type(value).__name__} is not {allowed}"]
        if "enum" in schema and value not in schema["enum"]:
            out.append(f"{where}: {value!r} not in {schema['enum']}")
        if isinstance(value, str) and "format" in schema:
            out += _format(value, schema["format"], where)
        if isinstance(value, int | float) and not isinstance(value, bool) and "minimum" in schema:
            if value < schema["minimum"]:
                out.append(f"{where}: {value} < {schema['minimum']}")
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value:
                    out.append(f"{where}: missing {name!r}")
            extra = schema.get("additionalProperties", True)
            for name, item in value.items():
                if name in props:
                    out += self.errors(item, props[name], f"{where}.{name}")
                elif extra is False:
                    out.append(f"{where}: unexpected {name!r}")
                elif isinstance(extra, dict):
                    out += self.errors(item, extra, f"{where}.{name}")
        if isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                out += self.errors(item, schema["items"], f"{where}[{i}]")
        return out

    def response_schema(self, path: str, status: int, method: str = "get") -> dict[str, Any]:
        op = self.doc["paths"][path][method]
        return op["responses"][str(status)]["content"]["application/json"]["schema"]

    def check(self, path: str, status: int, body: Any) -> None:
        problems = self.errors(body, self.response_schema(path, status))
        assert not problems, f"{path} {status} does not match docs/openapi.json:\n" + "\n".join(problems[:20])


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _format(value: str, fmt: str, where: str) -> list[str]:
    try:
        if fmt == "date-time":
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return [f"{where}: date-time without a zone"]
        elif fmt == "date":
            date.fromisoformat(value)
    except ValueError:
        return [f"{where}: {value!r} is not a {fmt}"]
    return []
