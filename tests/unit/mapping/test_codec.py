"""Encoding and decoding: round trips, and a clear DecodeError for anything else."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.mapping.codec import (
    DecodeError,
    DecodeFailure,
    decode_acknowledgement,
    decode_sync_message,
    decode_sync_message_in_one_pass,
    encode,
)
from sync.mapping.messages import (
    MAX_VERSION,
    AckError,
    Acknowledgement,
    AckOutcome,
    EntityType,
    SaSyncMessage,
    SyncMessage,
)
from tests.unit.mapping.builders import (
    EVENT_TIME,
    person_message,
    relationship_message,
    sa_message,
)
from tests.unit.mapping.strategies import sa_messages


def as_json(message: SyncMessage) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(encode(message))
    return document


def failure_of(data: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        decode_sync_message(data)
    return caught.value


def test_a_version_no_store_column_holds_is_refused_naming_the_field() -> None:
    """A version above what every database's version columns store (32 bits on PostgreSQL)
    is refused when the message is read, not when MDM's transaction fails to store it."""
    document = json.loads(encode(sa_message()))
    document["version"] = MAX_VERSION + 1
    failure = failure_of(json.dumps(document).encode())
    assert "version" in str(failure)
    document["version"] = MAX_VERSION
    decoded = decode_sync_message(json.dumps(document).encode())
    assert decoded.version == MAX_VERSION


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    sa_message(), sa_message(sa_status="30", end=dt.date(2025, 4, 1), master_external_id="SA-0"),
    sa_message(us_type=None, sp_ids=()), person_message(), relationship_message(),
    relationship_message(master_external_id=None, end_date=dt.date(2025, 5, 1)),
], ids=lambda message: message.key)
def test_message_round_trips_through_bytes(message: SyncMessage) -> None:
    decoded = decode_sync_message(encode(message))
    assert decoded == message
    assert type(decoded) is type(message)


def test_acknowledgement_round_trips_through_bytes() -> None:
    ack = Acknowledgement(
        sync_request_id="SR-1", entity_type=EntityType.SA, entity_id="SA-1", version=3,
        outcome=AckOutcome.ERROR, processed_at=EVENT_TIME,
        errors=(AckError(code="D2-USSPDTVAL", path="spLinks[0].stopDate", message="bad"),))
    assert decode_acknowledgement(encode(ack)) == ack


def test_wire_names_are_camel_case_and_every_field_is_written() -> None:
    document = as_json(sa_message(end=None))
    assert document["entityType"] == "SA"
    assert document["schemaVersion"] == 1
    assert document["externalId"] == "SA-1"
    assert document["externalAccountId"] == "ACCT-1"
    assert document["endDate"] is None  # written as null, not left out
    assert set(document["spLinks"][0]) == {"spId", "startDate", "stopDate", "startRead",
                                          "stopRead", "usageFlag", "usePercent"}
    assert document["eventTime"] == "2025-03-01T09:30:00Z"
    assert not [key for key in document if "_" in key]


@given(sa_messages())
def test_any_sa_message_round_trips(message: SaSyncMessage) -> None:
    data = encode(message)
    assert decode_sync_message(data) == message
    assert encode(decode_sync_message(data)) == data


# --- errors ----------------------------------------------------------------------------------


def test_bytes_that_are_not_json_are_bad_json() -> None:
    error = failure_of(b'{"schemaVersion": 1,')
    assert error.failure is DecodeFailure.BAD_JSON
    assert error.path == ""
    assert "not valid JSON" in error.reason
    assert failure_of(b"\xff\xfe").failure is DecodeFailure.BAD_JSON


def test_json_that_is_not_an_object_is_a_wrong_schema() -> None:
    error = failure_of(b"[1, 2]")
    assert error.failure is DecodeFailure.WRONG_SCHEMA
    assert error.reason == "expected a JSON object, got an array"


@pytest.mark.parametrize("version", [2, 0, "1", True, None])
def test_another_schema_version_is_an_unknown_version(version: Any) -> None:
    document = as_json(sa_message())
    document["schemaVersion"] = version
    error = failure_of(json.dumps(document).encode())
    assert error.failure is DecodeFailure.UNKNOWN_SCHEMA_VERSION
    assert error.path == "schemaVersion"
    assert "this reader knows 1" in error.reason


def test_unknown_version_is_reported_before_the_shape() -> None:
    """A newer writer's message is an unknown version, not a list of field errors."""
    error = failure_of(b'{"schemaVersion": 2, "entityType": "SA", "brandNew": {}}')
    assert error.failure is DecodeFailure.UNKNOWN_SCHEMA_VERSION
    assert len(error.problems) == 1


def test_missing_schema_version_and_unknown_entity_type() -> None:
    assert failure_of(b'{"entityType": "SA"}').problems == (("schemaVersion", "missing"),)
    error = failure_of(b'{"schemaVersion": 1, "entityType": "METER"}')
    assert error.failure is DecodeFailure.WRONG_SCHEMA
    assert error.path == "entityType"
    assert "unknown entity type 'METER'" in error.reason


def test_every_schema_problem_is_listed_with_its_wire_path() -> None:
    document = as_json(sa_message())
    document["spLinks"][0]["startDate"] = "2025-02-30"
    document["spLinks"][0]["meterRead"] = 5
    del document["externalAccountId"]
    error = failure_of(json.dumps(document).encode())
    assert error.failure is DecodeFailure.WRONG_SCHEMA
    problems = dict(error.problems)
    assert problems["externalAccountId"] == "missing"
    assert problems["spLinks[0].meterRead"] == "unknown field"
    assert "spLinks[0].startDate" in problems
    assert "'2025-02-30'" in problems["spLinks[0].startDate"]
    assert "spLinks[0].startDate" in str(error)


def test_python_field_names_are_not_accepted_on_the_wire() -> None:
    document = as_json(person_message())
    document["sync_request_id"] = document.pop("syncRequestId")
    problems = dict(failure_of(json.dumps(document).encode()).problems)
    assert problems == {"syncRequestId": "missing", "sync_request_id": "unknown field"}


def test_an_event_time_without_zone_is_refused() -> None:
    document = as_json(person_message())
    document["eventTime"] = "2025-03-01T09:30:00"
    assert failure_of(json.dumps(document).encode()).path == "eventTime"


def test_fields_of_another_entity_type_are_refused() -> None:
    document = as_json(person_message())
    document["entityType"] = "SA"
    error = failure_of(json.dumps(document).encode())
    assert dict(error.problems)["name"] == "unknown field"


def test_acknowledgement_decoding_checks_the_version_too() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_acknowledgement(b'{"schemaVersion": 7}')
    assert caught.value.failure is DecodeFailure.UNKNOWN_SCHEMA_VERSION


def test_decode_error_as_a_dead_letter_record() -> None:
    error = failure_of(b'{"schemaVersion": 1, "entityType": "SA"}')
    record = error.as_record()
    assert record["failure"] == "wrong_schema"
    assert {"path": "externalId", "reason": "missing"} in record["problems"]
    json.dumps(record)  # a record is plain JSON


# --- property: whatever the bytes, DecodeError or a message ------------------------------


def decode_or_decode_error(data: bytes) -> None:
    """Decoding either succeeds or raises a DecodeError that names its problems."""
    for decode in (decode_sync_message, decode_acknowledgement):
        problems: tuple[tuple[str, str], ...] = ()
        try:
            decode(data)
            continue
        except DecodeError as error:
            problems = error.problems
        assert problems
        assert all(isinstance(path, str) and reason for path, reason in problems)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    decode_or_decode_error(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
VALID = as_json(sa_message())


@given(st.sampled_from(sorted(VALID)), json_values)
@settings(max_examples=300)
def test_a_valid_message_with_any_field_replaced_raises_only_decode_error(
    key: str, value: Any,
) -> None:
    document = {**VALID, key: value}
    decode_or_decode_error(json.dumps(document).encode())


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6),
       st.sampled_from(["SA", "PERSON", "SA_RELATIONSHIP", "ACK"]))
def test_arbitrary_objects_of_the_known_version_raise_only_decode_error(
    document: dict[str, Any], entity_type: str,
) -> None:
    document.update(schemaVersion=1, entityType=entity_type)
    decode_or_decode_error(json.dumps(document).encode())


def test_deeply_nested_json_is_bad_json_not_a_crash() -> None:
    error = failure_of(b"[" * 100_000)
    assert error.failure is DecodeFailure.BAD_JSON


# --- the single-pass reading agrees with the codec's checks ----------------------------------


def reading(decode: Any, value: bytes) -> object:
    try:
        return decode(value)
    except DecodeError as error:
        return ("error", str(error))


SA_BYTES = encode(sa_message())


@pytest.mark.parametrize("value", [
    SA_BYTES.replace(b'"schemaVersion":1,', b""),
    SA_BYTES.replace(b'"schemaVersion":1', b'"schemaVersion":true'),
    SA_BYTES.replace(b'"schemaVersion":1', b'"schemaVersion":1.0'),
    SA_BYTES[:-1] + b',"schemaVersion":true}',
    # The key spelled with an escape after the plain one: the last one counts, and is true.
    SA_BYTES[:-1] + b',"schema\\u0056ersion":true}',
    SA_BYTES[:-1] + b',"schema\\u0056ersion":2}',
    SA_BYTES.replace(b'"entityType":"SA"', b'"entityType":"S\\u0041"'),
    SA_BYTES.replace(b'"entityType":"SA"', b'"entityType":"US"'),
    SA_BYTES[:-1] + b',"entityType":"PERSON"}',
    b"\xef\xbb\xbf" + SA_BYTES,
    SA_BYTES + b"x",
    SA_BYTES + b" \n",
    SA_BYTES.replace(b'"saType":"', b'"saType":"\xff', 1),
    SA_BYTES.replace(b'"saType":"', b'"saType":"\n', 1),
    SA_BYTES.replace(b'"version":1,', b'"version":' + b"1" * 5000 + b",", 1),
    encode(person_message()).replace(b'"name":"', "\"name\":\"Jos\u00e9 ".encode(), 1),
    encode(relationship_message()),
])
def test_the_single_pass_reads_what_the_codec_reads(value: bytes) -> None:
    assert reading(decode_sync_message_in_one_pass, value) == reading(decode_sync_message, value)


@given(st.sampled_from([encode(sa_message()), encode(person_message()),
                        encode(relationship_message())]),
       st.integers(0, 2000), st.binary(max_size=3))
def test_the_single_pass_agrees_with_the_codec_on_damaged_bytes(value: bytes, at: int,
                                                                  noise: bytes) -> None:
    position = at % (len(value) + 1)
    mutated = value[:position] + noise + value[position + len(noise):]
    assert reading(decode_sync_message_in_one_pass, mutated) == \
        reading(decode_sync_message, mutated)


@given(st.sampled_from(sorted(VALID)), json_values)
def test_the_single_pass_agrees_with_the_codec_on_any_field_replaced(key: str,
                                                                      value: Any) -> None:
    data = json.dumps({**VALID, key: value}, separators=(",", ":")).encode()
    assert reading(decode_sync_message_in_one_pass, data) == reading(decode_sync_message, data)
