"""Property-based fuzzing of what the MDM worker reads: no bytes, however made, crash it.

Inputs: arbitrary bytes; arbitrary JSON values; valid sync messages (SA, person, relationship)
with one field, at any depth, replaced by an arbitrary JSON value, removed, or joined by an
unknown one; valid encodings with bytes flipped, cut or inserted. For each:

- the codec answers a message or a :class:`DecodeError`, never another exception;
- the worker's processor never raises, and stores exactly one answer for the record's
  position: an acknowledgement for what decodes (of that very entity and version), or a dead
  letter for what does not, carrying the codec's failure and the original bytes. A message
  that decodes is never dead-lettered for its mapping or its apply (that would be a bug, not
  bad input).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sync.clock import FixedClock
from sync.mapping.codec import DecodeError, decode_acknowledgement, decode_sync_message, encode
from sync.mapping.messages import SyncMessage
from sync.mdm.ports import OutboxKind
from sync.storage.mdm import MdmStore
from sync.worker.dead_letters import DeadLetter
from sync.worker.mdm_processor import ApplyRetry, MdmProcessor, SourceRecord
from sync.worker.stats import Verdict
from tests.unit.mapping.builders import person_message, relationship_message, sa_message
from tests.unit.mdm.builders import default_admin

TOPIC = "fuzz.sync"
EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
DECODE_FAILURES = {"bad_json", "wrong_schema", "unknown_schema_version", "tombstone"}

VALID: list[SyncMessage] = [
    sa_message("SA-F1", sp_ids=("SP-F1",)),
    sa_message("SA-F2", sp_ids=("SP-F2", "SP-F3"), sa_status="30", end=dt.date(2025, 9, 1)),
    person_message("PER-F1"),
    relationship_message("SA-F4", master_external_id="SA-F1"),
]
WIRE = [json.loads(encode(message)) for message in VALID]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12)


class Fuzzer:
    """One SQLite MDM store and a processor; every record gets a new offset."""

    def __init__(self, store: MdmStore) -> None:
        self.store = store
        self.processor = MdmProcessor(store, FixedClock(dt.date(2025, 3, 1)),
                                      retry=ApplyRetry(attempts=2, initial_wait_s=0.001,
                                                       max_wait_s=0.001))
        self.offsets = itertools.count()

    def feed(self, value: bytes | None, key: bytes | None = b"SA:SA-F1") -> None:
        """Process one record and check its one answer."""
        offset = next(self.offsets)
        decoded: SyncMessage | DecodeError | None = None
        if value is not None:
            try:
                decoded = decode_sync_message(value)
            except DecodeError as error:  # anything else fails the test
                decoded = error
        verdict = self.processor.process(SourceRecord(TOPIC, 0, offset, key, value))
        answers = [entry for entry in self.store.unpublished(1_000)
                   if entry.source.offset == offset]
        assert len(answers) == 1, (verdict, answers)
        [answer] = answers
        if isinstance(decoded, SyncMessage):
            assert verdict in {Verdict.APPLIED, Verdict.REJECTED, Verdict.DUPLICATE,
                               Verdict.SYNCHRONIZED}, (verdict, value)
            assert answer.kind is OutboxKind.ACKNOWLEDGEMENT
            ack = decode_acknowledgement(answer.value)
            assert (ack.entity_id, ack.version) == (decoded.external_id, decoded.version)
        else:
            assert verdict is Verdict.DEAD_LETTERED
            assert answer.kind is OutboxKind.DEAD_LETTER
            letter = DeadLetter.model_validate_json(answer.value)
            expected = "tombstone" if decoded is None else decoded.failure.value
            assert letter.error.failure.value == expected
            assert letter.error.failure.value in DECODE_FAILURES
            assert letter.original_value() == value
            assert letter.original_key() == key
        assert self.store.last_positions(TOPIC) == {0: offset}
        # Read again (a runner that resumed too early): answered once, nothing changes.
        assert self.processor.process(SourceRecord(TOPIC, 0, offset, key, value)) \
            is Verdict.ALREADY_CONSUMED


@pytest.fixture
def fuzzer(tmp_path: Path) -> Iterator[Fuzzer]:
    store = MdmStore(f"sqlite:///{tmp_path / 'mdm.db'}", default_admin())
    store.create_schema()
    yield Fuzzer(store)
    store.dispose()


def _paths(document: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value inside ``document`` (object keys and array indexes)."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for name, value in document.items():
            found += _paths(value, (*prefix, name))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _mutated(document: Any, path: tuple[str | int, ...], action: str, value: Any) -> Any:
    copy = json.loads(json.dumps(document))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "remove":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"unknown{len(parent)}"] = value
    else:
        parent.append(value)
    return copy


@st.composite
def spoiled_documents(draw: st.DrawFn) -> bytes:
    document = draw(st.sampled_from(WIRE))
    path = draw(st.sampled_from(_paths(document)))
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    value = draw(json_values)
    return json.dumps(_mutated(document, path, action, value)).encode()


# Values of the same JSON kind as the value they replace, so that most changed messages still
# decode and reach the mapping and the store: what MDM does with strange but well-formed data.
_TEXTS = st.one_of(
    st.text(max_size=300),
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.sampled_from(["10", "20", "30", "40", "60", "70", "E-RES", "G-RES", "E-RES-US",
                     "SP-F1", "SP-F2", "SA-F1", "PER-F1", "", " ", "PRIMARY"]))


def _like(original: Any) -> st.SearchStrategy[Any]:
    if isinstance(original, bool):
        return st.booleans()
    if isinstance(original, int):
        return st.integers(-2**63, 2**63)
    if isinstance(original, float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(original, str):
        return _TEXTS
    return st.none() | _TEXTS


@st.composite
def plausible_messages(draw: st.DrawFn) -> bytes:
    document = draw(st.sampled_from(WIRE))
    leaves = [path for path in _paths(document)
              if not isinstance(_at(document, path), dict | list)]
    for path in draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=3, unique=True)):
        document = _mutated(document, path, "replace", draw(_like(_at(document, path))))
    return json.dumps(document).encode()


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


@st.composite
def damaged_encodings(draw: st.DrawFn) -> bytes:
    data = bytearray(encode(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at:at + draw(st.integers(1, 20))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(value=st.one_of(st.none(), st.binary(max_size=400)),
       key=st.one_of(st.none(), st.binary(max_size=24)))
@example(value=b"[" * 100_000, key=None)
@example(value=b'{"schemaVersion":1,"version":' + b"9" * 5000 + b"}", key=b"SA:SA-F1")
@example(value=b"\xef\xbb\xbf{}", key=b"\xff")
def test_arbitrary_bytes_never_crash_the_worker(fuzzer: Fuzzer, value: bytes | None,
                                                key: bytes | None) -> None:
    fuzzer.feed(value, key)


@FUZZ
@given(document=json_values)
@example(document={"schemaVersion": True, "entityType": "SA"})
@example(document={"schemaVersion": 1, "entityType": ["SA"]})
@example(document={"schemaVersion": 1.0, "entityType": "SA"})
def test_arbitrary_json_never_crashes_the_worker(fuzzer: Fuzzer, document: Any) -> None:
    fuzzer.feed(json.dumps(document).encode())


@FUZZ
@given(data=spoiled_documents())
def test_valid_messages_with_a_spoiled_field_never_crash_the_worker(fuzzer: Fuzzer,
                                                                    data: bytes) -> None:
    fuzzer.feed(data)


@FUZZ
@given(data=damaged_encodings())
def test_damaged_encodings_never_crash_the_worker(fuzzer: Fuzzer, data: bytes) -> None:
    fuzzer.feed(data)


@FUZZ
@given(data=plausible_messages())
def test_well_formed_messages_with_strange_values_never_crash_the_worker(fuzzer: Fuzzer,
                                                                         data: bytes) -> None:
    fuzzer.feed(data)
