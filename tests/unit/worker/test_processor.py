"""The processor core without a bus: failures that are the message's fault become dead letters,
a store that does not answer stops the stream instead, and no bytes whatsoever make it raise."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.mapping.codec import decode_acknowledgement, encode
from sync.mdm.commands import MdmCommand
from sync.mdm.ports import Acknowledge, Consumed, ConsumedPosition, OutboxKind
from sync.storage.mdm import MdmStore
from sync.worker import dead_letters, mdm_processor
from sync.worker.dead_letters import DeadLetter
from sync.worker.mdm_processor import MdmProcessor, SourceRecord, StoreUnavailableError
from sync.worker.resume import resume_offsets
from sync.worker.stats import Verdict, WorkerStatus
from tests.unit.mapping.builders import sa_message
from tests.unit.worker.support import ADMIN, CLOCK, FAST_RETRY, SETTINGS, new_rig

TOPIC = SETTINGS.topics.sync_requests
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MdmStore]:
    created = MdmStore(f"sqlite:///{tmp_path / 'mdm.db'}", ADMIN)
    created.create_schema()
    yield created
    created.dispose()


def record(offset: int, value: bytes | None, key: bytes | None = b"SA:SA-1") -> SourceRecord:
    return SourceRecord(TOPIC, 0, offset, key, value, 1_700_000_000_000)


def only_dead_letter(store: MdmStore) -> dict[str, Any]:
    [entry] = store.unpublished(10)
    assert entry.kind is OutboxKind.DEAD_LETTER
    return dict(json.loads(entry.value))


class FlakyStore(MdmStore):
    """A real store whose ``consume`` fails the first ``failures`` times."""

    def __init__(self, url: str, failures: int, error: Exception) -> None:
        super().__init__(url, ADMIN)
        self.failures, self.error, self.calls = failures, error, 0

    def consume(self, position: ConsumedPosition, command: MdmCommand | None,
                acknowledge: Acknowledge) -> Consumed | None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return super().consume(position, command, acknowledge)


def test_an_apply_that_fails_then_passes_is_applied_once(tmp_path: Path) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path / 'mdm.db'}", 2, RuntimeError("blip"))
    store.create_schema()
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    assert processor.process(record(0, encode(sa_message()))) is Verdict.APPLIED
    assert store.calls == 3
    [entry] = store.unpublished(10)
    assert decode_acknowledgement(entry.value).outcome.value == "SYNCHRONIZED"


def test_an_apply_that_keeps_failing_is_dead_lettered_while_the_store_answers(
        tmp_path: Path) -> None:
    store = FlakyStore(f"sqlite:///{tmp_path / 'mdm.db'}", 99, ValueError("value too long"))
    store.create_schema()
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    assert processor.process(record(4, encode(sa_message()))) is Verdict.DEAD_LETTERED
    assert store.calls == FAST_RETRY.attempts
    letter = only_dead_letter(store)
    assert letter["error"]["failure"] == "apply_failed"
    assert "ValueError: value too long" in letter["error"]["message"]
    assert store.last_positions(TOPIC) == {0: 4}
    assert store.get_us("SA-1") is None


def test_a_store_that_does_not_answer_stops_the_stream_and_records_nothing(
        tmp_path: Path) -> None:
    unreachable = MdmStore("postgresql://nobody@127.0.0.1:1/mdm", ADMIN)
    processor = MdmProcessor(unreachable, CLOCK, retry=FAST_RETRY)
    with pytest.raises(StoreUnavailableError, match="MDM store unreachable"):
        processor.process(record(0, encode(sa_message())))
    with pytest.raises(StoreUnavailableError, match="MDM store unreachable"):
        processor.process(record(1, b"not json"))  # not even a dead letter can be kept
    assert sum(processor.stats.counts.values()) == 0
    unreachable.dispose()


def test_a_mapping_that_fails_is_dead_lettered(store: MdmStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: object) -> None:
        raise KeyError("usage flag")

    monkeypatch.setattr(mdm_processor, "command_for", broken)
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    assert processor.process(record(0, encode(sa_message()))) is Verdict.DEAD_LETTERED
    letter = only_dead_letter(store)
    assert letter["error"]["failure"] == "mapping_failed"
    assert letter["error"]["problems"] == [{"path": "", "reason": "KeyError: 'usage flag'"}]


def test_a_rejected_message_is_acknowledged_as_an_error(store: MdmStore) -> None:
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    bad = sa_message(us_type="NOPE-US")
    assert processor.process(record(0, encode(bad))) is Verdict.REJECTED
    [entry] = store.unpublished(10)
    ack = decode_acknowledgement(entry.value)
    assert ack.outcome.value == "ERROR"
    assert ack.errors


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.binary(max_size=200), st.none(),
                       st.builds(lambda m: encode(m), st.just(sa_message()))),
       key=st.one_of(st.none(), st.binary(max_size=20)))
def test_any_record_gets_exactly_one_answer(store: MdmStore, value: bytes | None,
                                            key: bytes | None) -> None:
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    offset = sum(processor.stats.counts.values()) + len(store.unpublished(100_000))
    verdict = processor.process(SourceRecord(TOPIC, 1, offset, key, value))
    assert verdict in set(Verdict) - {Verdict.ALREADY_CONSUMED}
    assert store.last_positions(TOPIC)[1] == offset
    assert [e.source.offset for e in store.unpublished(100_000)].count(offset) == 1
    assert processor.process(SourceRecord(TOPIC, 1, offset, key, value)) \
        is Verdict.ALREADY_CONSUMED


def test_dead_letter_keeps_the_original_bytes() -> None:
    letter = dead_letters.dead_letter_for(
        topic=TOPIC, partition=2, offset=9, key=b"\x00\xff", value=b"caf\xc3\xa9 \xff",
        timestamp_ms=None, failure=dead_letters.FailureKind.BAD_JSON, problems=[("", "x")],
        message="bad_json: x", at=CLOCK.now())
    again = DeadLetter.model_validate_json(letter.model_dump_json(by_alias=True))
    assert (again.original_key(), again.original_value()) == (b"\x00\xff", b"caf\xc3\xa9 \xff")
    assert again.value_encoding is dead_letters.Encoding.BASE64


def test_dead_letter_schema_file_matches_the_model() -> None:
    committed = SCHEMAS / dead_letters.SCHEMA_FILE
    assert committed.read_text("utf-8") == dead_letters.schema_document()


def test_resume_offsets() -> None:
    assert resume_offsets("t", {0: 4, 2: 0}, {0: 0, 1: 0, 2: 3}, {0: 9, 1: 0, 2: 8}) == {
        0: 5, 1: 0, 2: 3}


async def test_stats_report_lag_per_partition(tmp_path: Path) -> None:
    rig = await new_rig(f"sqlite:///{tmp_path / 'mdm.db'}", "lag")
    await rig.send(*(sa_message(f"SA-{n}", sp_ids=(f"SP-{n}",)) for n in range(5)))
    worker = rig.worker()
    await worker.start()
    assert sum(worker.stats.lag().values()) == 5
    await worker.drain(asyncio.Event())
    snapshot = worker.stats.snapshot()
    assert sum(snapshot["lag"][TOPIC].values()) == 0
    assert snapshot["status"] == WorkerStatus.OK.value
    assert snapshot["counts"]["applied"] == 5
    rig.store.dispose()


# --- batches ---------------------------------------------------------------------------------


def mixed_stream() -> list[SourceRecord]:
    """Good snapshots, a newer version of one, a repeat of a position, and records that can
    only be dead letters (not JSON, a tombstone, a snapshot the mapping rejects)."""
    return [
        record(0, encode(sa_message())),
        record(1, b"not json"),
        record(2, encode(sa_message(version=2, sa_status="30", end=dt.date(2025, 6, 1)))),
        record(3, None),
        record(4, encode(sa_message(us_type="NOPE-US", version=3))),
        record(2, encode(sa_message(version=2, sa_status="30", end=dt.date(2025, 6, 1)))),
        record(5, encode(sa_message("SA-2", sp_ids=("SP-2",)))),
    ]


def answers(store: MdmStore) -> list[tuple[str, int, bytes]]:
    return [(entry.kind.value, entry.source.offset, entry.value)
            for entry in store.unpublished(100)]


def test_a_batch_gets_the_verdicts_and_answers_of_its_records_one_by_one(
        tmp_path: Path) -> None:
    stores = []
    for name in ("single", "batch"):
        created = MdmStore(f"sqlite:///{tmp_path / name}.db", ADMIN)
        created.create_schema()
        stores.append(created)
    single, batched = stores
    expected = [MdmProcessor(single, CLOCK, retry=FAST_RETRY).process(r) for r in mixed_stream()]
    processor = MdmProcessor(batched, CLOCK, retry=FAST_RETRY)
    assert processor.process_batch(mixed_stream()) == expected
    assert Verdict.DEAD_LETTERED in expected
    assert Verdict.ALREADY_CONSUMED in expected
    assert answers(batched) == answers(single)
    assert batched.get_us("SA-1") == single.get_us("SA-1")
    assert batched.last_positions(TOPIC) == {0: 5}
    assert sum(processor.stats.counts.values()) == len(expected)


def test_a_batch_hands_over_exactly_the_answers_the_outboxes_hold(store: MdmStore) -> None:
    """The answers a batch returns are published instead of the outboxes' rows: the same kind,
    key, bytes and source position, in the same order per kind, as reading them back gives
    (the repeated position, answered before, has no answer of its own)."""
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    stream = mixed_stream()
    stream[3] = SourceRecord(TOPIC, 0, 3, None, None, 1_700_000_000_000)  # no key at all
    processed = processor.process_batch_answered(stream)
    assert processed.answers is not None
    stored = [(e.kind, e.key, e.value, e.source) for e in store.unpublished(100)]
    assert [(a.kind, a.key, a.value, a.source) for a in processed.answers
            if a.kind is OutboxKind.ACKNOWLEDGEMENT] + [
        (a.kind, a.key, a.value, a.source) for a in processed.answers
        if a.kind is OutboxKind.DEAD_LETTER] == stored
    assert len(stored) == len(stream) - 1
    assert None in {a.key for a in processed.answers}  # the tombstone's dead letter
    # A batch of positions all answered before answers nothing new.
    again = processor.process_batch_answered(mixed_stream())
    assert again.answers == []
    assert set(again.verdicts) == {Verdict.ALREADY_CONSUMED}


def test_answers_of_records_consumed_one_by_one_are_left_to_the_outboxes(
        store: MdmStore, tmp_path: Path) -> None:
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    assert processor.process_batch_answered([record(0, encode(sa_message()))]).answers is None
    failing = FailingBatchStore(f"sqlite:///{tmp_path / 'failing.db'}", ADMIN)
    failing.create_schema()
    processed = MdmProcessor(failing, CLOCK, retry=FAST_RETRY).process_batch_answered(
        [record(0, encode(sa_message())), record(1, b"{}")])
    assert processed.answers is None
    assert processed.verdicts == [Verdict.APPLIED, Verdict.DEAD_LETTERED]
    failing.dispose()


class FailingBatchStore(MdmStore):
    """A real store whose batches always fail, as a bug in one message's apply would."""

    def consume_batch(self, items: Any) -> Any:
        raise ValueError("value too long for column")


def test_a_failing_batch_is_processed_record_by_record(tmp_path: Path) -> None:
    store = FailingBatchStore(f"sqlite:///{tmp_path / 'mdm.db'}", ADMIN)
    store.create_schema()
    processor = MdmProcessor(store, CLOCK, retry=FAST_RETRY)
    verdicts = processor.process_batch([record(0, encode(sa_message())), record(1, b"{}")])
    assert verdicts == [Verdict.APPLIED, Verdict.DEAD_LETTERED]
    assert store.get_us("SA-1") is not None
    assert store.last_positions(TOPIC) == {0: 1}


def test_a_batch_on_a_store_that_does_not_answer_stops_the_stream() -> None:
    unreachable = MdmStore("postgresql://nobody@127.0.0.1:1/mdm", ADMIN)
    processor = MdmProcessor(unreachable, CLOCK, retry=FAST_RETRY)
    with pytest.raises(StoreUnavailableError, match="MDM store unreachable"):
        processor.process_batch([record(0, encode(sa_message())), record(1, b"not json")])
    assert sum(processor.stats.counts.values()) == 0
    unreachable.dispose()
