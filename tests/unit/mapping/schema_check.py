"""Checking a JSON document against an exported schema.

Uses the ``jsonschema`` package when it is installed; otherwise a small checker of the subset of
JSON Schema that pydantic emits for the wire models (objects with ``properties``, ``required``
and ``additionalProperties: false``, ``$ref`` into ``$defs``, ``anyOf``, arrays, ``const``,
``enum``, scalar types, ``minLength``, ``minimum``/``maximum``, ``date``/``date-time`` formats).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

try:
    import jsonschema
except ImportError:  # pragma: no cover - depends on the environment
    jsonschema = None

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "null": (type(None),), "integer": (int,), "number": (int, float),
}


def schema_problems(document: Any, schema: dict[str, Any]) -> list[str]:
    if jsonschema is not None:
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        return [f"{error.json_path}: {error.message}"
                for error in validator.iter_errors(document)]
    return _check(document, schema, schema, "$")


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _check(value, root["$defs"][name], root, path)
    if "anyOf" in schema:
        options = [_check(value, option, root, path) for option in schema["anyOf"]]
        return [] if any(not problems for problems in options) else [
            f"{path}: matches no option: {options}"]
    problems: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        allowed = _TYPES[kind]
        if not isinstance(value, allowed) or (kind in ("integer", "number")
                                              and isinstance(value, bool)):
            return [f"{path}: expected {kind}, got {value!r}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{path}: shorter than {schema['minLength']}")
        problems.extend(_format(value, schema.get("format"), path))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path}: above {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        problems.extend(f"{path}: missing {name}" for name in schema.get("required", ())
                        if name not in value)
        if schema.get("additionalProperties") is False:
            problems.extend(f"{path}: unknown {name}" for name in value if name not in properties)
        for name, item in value.items():
            if name in properties:
                problems.extend(_check(item, properties[name], root, f"{path}.{name}"))
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems.extend(_check(item, schema["items"], root, f"{path}[{index}]"))
    return problems


def _format(value: str, fmt: str | None, path: str) -> list[str]:
    try:
        if fmt == "date":
            dt.date.fromisoformat(value)
        elif fmt == "date-time" and dt.datetime.fromisoformat(value).tzinfo is None:
            return [f"{path}: date-time without offset"]
    except ValueError:
        return [f"{path}: not a {fmt}: {value!r}"]
    return []
