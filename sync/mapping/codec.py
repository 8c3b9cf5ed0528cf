"""Bytes on the wire <-> message models, with errors a dead-letter record can carry.

Decoding checks, in order: UTF-8 JSON, a JSON object, a known ``schemaVersion``, a known
``entityType`` (sync messages), then the model. The version is checked before the shape so that a
message from a newer writer is reported as "unknown schema version", not as a list of field
errors it was never meant to satisfy. Whatever the bytes, decoding raises :class:`DecodeError`
and nothing else.

Those checks parse the document once to look at its envelope and the model reads the bytes
again. :func:`decode_sync_message_in_one_pass` reads well-formed messages in a single
validation and leaves everything else to :func:`decode_sync_message`: both accept exactly the
same bytes and give the same message or the same error. The readers of the sync topic (the MDM
worker, the replay) use it.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from sync.mapping.messages import (
    MESSAGE_TYPES,
    SCHEMA_VERSION,
    Acknowledgement,
    EntityType,
    SyncMessage,
    WireModel,
)

M = TypeVar("M", bound=WireModel)


class DecodeFailure(StrEnum):
    BAD_JSON = "bad_json"
    WRONG_SCHEMA = "wrong_schema"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"


class DecodeError(ValueError):
    """Bytes that are not a message this reader understands. ``problems`` lists every
    ``(path, reason)`` found; ``path`` and ``reason`` are the first (``""`` = the whole
    message)."""

    def __init__(self, failure: DecodeFailure, problems: Sequence[tuple[str, str]]) -> None:
        self.failure = failure
        self.problems = tuple(problems) or (("", "undecodable"),)
        self.path, self.reason = self.problems[0]
        details = "; ".join(f"{path or '<message>'}: {reason}" for path, reason in self.problems)
        super().__init__(f"{failure.value}: {details}")

    def as_record(self) -> dict[str, Any]:
        """The error as a dead-letter record carries it."""
        return {"failure": self.failure.value,
                "problems": [{"path": path, "reason": reason} for path, reason in self.problems]}


def encode(message: WireModel) -> bytes:
    """Compact UTF-8 JSON with wire (camelCase) names; every field is written, nulls too."""
    return message.model_dump_json(by_alias=True).encode("utf-8")


_ENTITY_TYPE_VALUES = [member.value for member in EntityType]


def decode_sync_message(data: bytes) -> SyncMessage:
    """A sync message of any entity type, chosen by ``entityType``."""
    document = _document(data)
    entity_type = document.get("entityType")
    # Compare with a list: the value may be anything JSON holds, unhashable included.
    if entity_type not in _ENTITY_TYPE_VALUES:
        known = ", ".join(member.value for member in EntityType)
        reason = ("missing" if entity_type is None
                  else f"unknown entity type {_shown(entity_type)} (known: {known})")
        raise DecodeError(DecodeFailure.WRONG_SCHEMA, [("entityType", reason)])
    model: type[SyncMessage] = MESSAGE_TYPES[EntityType(entity_type)]
    return _validate(model, data)


_SYNC_MESSAGE: TypeAdapter[SyncMessage] = TypeAdapter(
    Annotated[SyncMessage, Field(discriminator="entity_type")])
_VERSION_KEY = b'"schemaVersion"'


def decode_sync_message_in_one_pass(data: bytes) -> SyncMessage:
    """What :func:`decode_sync_message` returns for ``data`` (and the same
    :class:`DecodeError` when it fails), in one validation pass for well-formed messages.

    The models alone would take a missing ``schemaVersion`` (it has a default) and ``true`` or
    ``1.0`` for it; the codec refuses those. So the single pass is trusted only when the
    document names ``schemaVersion`` once, written as the integer 1, and has no ``\\u``
    escape (which could spell that key a second time); anything else goes through the codec."""
    if (data.count(_VERSION_KEY) == 1 and b"\\u" not in data
            and (b'"schemaVersion":1,' in data or b'"schemaVersion":1}' in data)):
        try:
            return _SYNC_MESSAGE.validate_json(data, by_alias=True, by_name=False)
        except ValidationError:
            pass
    return decode_sync_message(data)


def decode_acknowledgement(data: bytes) -> Acknowledgement:
    _document(data)
    return _validate(Acknowledgement, data)


def _document(data: bytes) -> dict[str, Any]:
    """The JSON object in ``data``, whose ``schemaVersion`` this reader knows."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise DecodeError(DecodeFailure.BAD_JSON, [
            ("", f"not UTF-8 text (byte {error.start}: {error.reason})")]) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DecodeError(DecodeFailure.BAD_JSON, [
            ("", f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")]
        ) from None
    except (ValueError, RecursionError) as error:  # too deep, or an integer too long
        raise DecodeError(DecodeFailure.BAD_JSON, [("", f"not valid JSON: {error}")]) from None
    if not isinstance(document, dict):
        raise DecodeError(DecodeFailure.WRONG_SCHEMA, [
            ("", f"expected a JSON object, got {_JSON_TYPE.get(type(document), 'a value')}")])
    if "schemaVersion" not in document:
        raise DecodeError(DecodeFailure.WRONG_SCHEMA, [("schemaVersion", "missing")])
    version = document["schemaVersion"]
    # bool is an int in Python; true is not version 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DecodeError(DecodeFailure.UNKNOWN_SCHEMA_VERSION, [(
            "schemaVersion",
            f"unknown schema version {_shown(version)} (this reader knows {SCHEMA_VERSION})")])
    return document


_JSON_TYPE = {list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}


def _validate(model: type[M], data: bytes) -> M:
    try:
        # Wire names only: a snake_case key is an unknown field, not an alias.
        return model.model_validate_json(data, by_alias=True, by_name=False)
    except ValidationError as error:
        raise DecodeError(DecodeFailure.WRONG_SCHEMA, [
            (_path(item["loc"]), _reason(item)) for item in error.errors()]) from None


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _reason(item: Any) -> str:
    kind = item["type"]
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field"
    return f"{item['msg']} (got {_shown(item.get('input'))})"


def _shown(value: Any) -> str:
    # reprlib bounds both length and nesting depth: the input may be anything.
    return reprlib.repr(value)
