"""The dead-letter record: a sync message the worker could not consume, with why and from where.

Published on the dead-letter topic with the source record's key, as JSON (``schemaVersion`` 1,
camelCase like the rest of the wire contract; ``schemas/dead-letter.v1.json``). The original
value travels whole: as text when it is UTF-8, else base64 (``valueEncoding`` says which), so an
operator can fix it and publish it again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from sync.mapping.codec import DecodeError
from sync.mapping.messages import JSON_SCHEMA_DIALECT, WireModel

SCHEMA_FILE = "dead-letter.v1.json"


class FailureKind(StrEnum):
    BAD_JSON = "bad_json"
    WRONG_SCHEMA = "wrong_schema"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    TOMBSTONE = "tombstone"
    MAPPING_FAILED = "mapping_failed"
    APPLY_FAILED = "apply_failed"


class Encoding(StrEnum):
    UTF8 = "utf-8"
    BASE64 = "base64"


class Problem(WireModel):
    path: str = Field(description="wire path of the field ('' = the whole message)")
    reason: str


class DeadLetterError(WireModel):
    failure: FailureKind
    problems: tuple[Problem, ...]
    message: str = Field(description="the whole error in one line")


class DeadLetterSource(WireModel):
    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = Field(description="the source key (null for none), see keyEncoding")
    key_encoding: Encoding | None
    timestamp_ms: int | None = Field(description="the source record's timestamp")


class DeadLetter(WireModel):
    """One message the MDM worker could not consume."""

    schema_version: Literal[1] = 1
    error: DeadLetterError
    source: DeadLetterSource
    value: str | None = Field(description="the source value (null for a tombstone)")
    value_encoding: Encoding | None
    dead_lettered_at: AwareDatetime

    def original_value(self) -> bytes | None:
        return _decoded(self.value, self.value_encoding)

    def original_key(self) -> bytes | None:
        return _decoded(self.source.key, self.source.key_encoding)


def dead_letter_for(*, topic: str, partition: int, offset: int, key: bytes | None,
                    value: bytes | None, timestamp_ms: int | None, failure: FailureKind,
                    problems: list[tuple[str, str]], message: str,
                    at: dt.datetime) -> DeadLetter:
    shown_key, key_encoding = _encoded(key)
    shown_value, value_encoding = _encoded(value)
    return DeadLetter(
        error=DeadLetterError(failure=failure, message=message, problems=tuple(
            Problem(path=path, reason=reason) for path, reason in problems)),
        source=DeadLetterSource(topic=topic, partition=partition, offset=offset, key=shown_key,
                                key_encoding=key_encoding, timestamp_ms=timestamp_ms),
        value=shown_value, value_encoding=value_encoding, dead_lettered_at=at)


def decode_failure(error: DecodeError) -> tuple[FailureKind, list[tuple[str, str]], str]:
    """A codec error as a dead letter's failure kind, problems and message."""
    return FailureKind(error.failure.value), list(error.problems), str(error)


def _encoded(data: bytes | None) -> tuple[str | None, Encoding | None]:
    if data is None:
        return None, None
    try:
        return bytes(data).decode("utf-8"), Encoding.UTF8
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), Encoding.BASE64


def _decoded(text: str | None, encoding: Encoding | None) -> bytes | None:
    if text is None:
        return None
    if encoding is Encoding.BASE64:
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise ValueError(f"dead letter holds invalid base64: {error}") from None
    return text.encode("utf-8")


def schema_document() -> str:
    """The JSON Schema file text, byte-stable like the wire contract's files."""
    schema = {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_FILE,
              **DeadLetter.model_json_schema(by_alias=True)}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
