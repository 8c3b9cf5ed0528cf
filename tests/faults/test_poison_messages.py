"""One record in a hundred is poison, mixed into a stream the MDM worker (faust, as a process)
consumes: bytes that are not UTF-8, JSON cut short, a JSON array, missing and unknown fields,
an unknown schema version, dates that do not exist, tombstones, and SAs that reference a master
SA MDM has never heard of.

What cannot be read goes to the dead-letter topic, one dead letter per poison record, with its
failure, the path at fault and the original bytes. An SA naming an unknown master is readable:
MDM's validation refuses it (``D2-VAL-SUBUS``) and the refusal goes back to CCB as an ``ERROR``
acknowledgement, where a To Do asks someone to fix the data; nothing of it is applied. Every
good record around the poison is applied exactly once, including later versions on the very
keys that carried poison."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from sync.mapping.codec import encode
from sync.mapping.messages import SaSyncMessage
from sync.transport.bus import Message
from sync.worker.dead_letters import DeadLetter
from tests.faults.conftest import StreamRig
from tests.faults.support import (
    WorkerProcess,
    assert_stream_applied_once,
    budget_s,
    change_stream,
    keyed,
    publish_stream,
    read_acknowledgements,
    read_topic,
    wait_for,
)
from tests.unit.mapping.builders import sa_message

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

GOOD = 3_000
EVERY = 100  # one poison record per hundred


@dataclass(frozen=True)
class Poison:
    """A record that must not be applied, and the answer it must get: a dead letter with
    ``failure`` at ``path``, or (``failure`` None) an ERROR acknowledgement with ``code``."""

    message: Message
    failure: str | None
    path: str
    code: str | None = None


def _wire(n: int) -> dict[str, object]:
    """A valid SA message as a wire document, to spoil."""
    document: dict[str, object] = json.loads(encode(sa_message(
        f"SA-{n:06d}", version=99, sp_ids=(f"SP-{n:06d}",))))
    return document


def _spoiled(n: int, **changes: object) -> bytes:
    document = _wire(n)
    for name, value in changes.items():
        if value is None:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


def poison(i: int) -> Poison:
    """The ``i``-th poison record; its key is a good SA's (its good versions come before and
    after it on the same partition) unless the record has no reading at all."""
    n = i * 7
    key = f"SA:SA-{n:06d}".encode()
    kinds = [
        lambda: Poison(Message(key, b"\xff\xfe\x00 not text"), "bad_json", ""),
        lambda: Poison(Message(key, encode(sa_message(f"SA-{n:06d}"))[:57]), "bad_json", ""),
        lambda: Poison(Message(b"raw", b'[{"schemaVersion": 1}]'), "wrong_schema", ""),
        lambda: Poison(Message(key, _spoiled(n, startDate=None)), "wrong_schema", "startDate"),
        lambda: Poison(Message(key, _spoiled(n, meterReading=42)), "wrong_schema",
                       "meterReading"),
        lambda: Poison(Message(key, _spoiled(n, schemaVersion=2)), "unknown_schema_version",
                       "schemaVersion"),
        lambda: Poison(Message(key, _spoiled(n, startDate="2025-02-30")), "wrong_schema",
                       "startDate"),
        lambda: Poison(Message(key, _spoiled(n, endDate="the day after")), "wrong_schema",
                       "endDate"),
        lambda: Poison(Message(key, None), "tombstone", ""),
        lambda: Poison(keyed(_orphan(i)), None, "masterExternalId", "D2-VAL-SUBUS"),
    ]
    return kinds[i % len(kinds)]()


def _orphan(i: int) -> SaSyncMessage:
    """A sub SA whose master SA MDM never received."""
    return sa_message(f"SA-ORPHAN-{i:03d}", sp_ids=(f"SP-ORPHAN-{i:03d}",),
                      master_external_id=f"SA-NOBODY-{i:03d}")


async def test_one_percent_poison_is_dead_lettered_and_the_rest_applied_once(
        stream_rig: StreamRig, tmp_path: Path) -> None:
    rig = stream_rig
    good = change_stream(GOOD)
    poisons = [poison(i) for i in range(GOOD // EVERY)]
    stream: list[Message] = []
    at: dict[int, Poison] = {}  # index in the stream -> poison
    for index, message in enumerate(good):
        if index % EVERY == EVERY // 2:
            at[len(stream)] = poisons[len(at)]
            stream.append(at[len(stream)].message)
        stream.append(keyed(message))
    assert len(at) == len(stream) // 100 == GOOD // EVERY
    records = await publish_stream(rig.bus, rig.topic, stream)
    poison_at = {(records[index].partition, records[index].offset): item
                 for index, item in at.items()}
    ends = await rig.bus.end_offsets(rig.topic)

    worker = WorkerProcess.mdm(rig.settings, tmp_path / "worker.log").start()
    try:
        await wait_for(lambda: (rig.store.last_positions(rig.topic) == {
            p: end - 1 for p, end in ends.items() if end} and not rig.store.unpublished(1))
            or not worker.alive, budget_s(len(stream)), "the stream to be consumed")
        assert worker.alive, worker.log_tail()
        assert worker.stop() == 0, worker.log_tail()
    finally:
        worker.ensure_stopped()

    await assert_stream_applied_once(rig.store, rig.bus, rig.topic, good,
                                     other_records=len(poisons))
    letters = [DeadLetter.model_validate_json(record.value or b"") for record in
               await read_topic(rig.bus, rig.settings.topics.dead_letters,
                                sum(1 for p in poisons if p.failure))]
    by_source = {(letter.source.partition, letter.source.offset): letter for letter in letters}
    unreadable = {where: item for where, item in poison_at.items() if item.failure}
    assert set(by_source) == set(unreadable), "exactly the unreadable poison is dead-lettered"
    for where, item in unreadable.items():
        letter = by_source[where]
        assert letter.source.topic == rig.topic
        assert letter.error.failure.value == item.failure, (where, letter.error)
        assert item.path in [problem.path for problem in letter.error.problems], letter.error
        assert letter.original_value() == item.message.value
        assert letter.original_key() == item.message.key
    refused = [item for item in poison_at.values() if item.failure is None]
    acks = await read_acknowledgements(rig.bus, rig.settings.topics.acknowledgements,
                                       len(good) + len(refused))
    errors = {ack.entity_id: ack for ack in acks if ack.outcome.value == "ERROR"}
    assert set(errors) == {f"SA-ORPHAN-{i:03d}" for i in range(len(poisons))
                           if poisons[i].failure is None}
    for ack in errors.values():
        assert [(e.code, e.path) for e in ack.errors] == [("D2-VAL-SUBUS", "masterExternalId")]
        assert rig.store.get_us(ack.entity_id) is None

