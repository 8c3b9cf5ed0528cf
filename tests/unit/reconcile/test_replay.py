"""The bounded replay of the sync topic on the in-process bus: frozen ends, a start time,
the newest snapshot per key, undecodable records kept as problems."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.mapping.codec import DecodeError, decode_sync_message, encode
from sync.mapping.messages import SaSyncMessage
from sync.reconcile.replay import (
    decode_for_replay,
    rebuild_latest,
    replay_batches,
    replay_bounds,
)
from sync.transport.bus import Message, Record, TopicSpec, UnknownTopicError
from sync.transport.memory import MemoryBus
from tests.unit.mapping.builders import person_message, sa_message
from tests.unit.mapping.strategies import sa_messages

TOPIC = "sync"
T0 = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)


async def new_bus(partitions: int = 3) -> MemoryBus:
    bus = MemoryBus(f"replay-{uuid.uuid4().hex[:8]}")
    await bus.create_topics([TopicSpec(TOPIC, partitions, compacted=True)])
    return bus


def record_of(message: SaSyncMessage, at: dt.datetime | None = None) -> Message:
    return Message(message.key.encode(), encode(message), (),
                   None if at is None else int(at.timestamp() * 1000))


async def publish(bus: MemoryBus, *messages: Message) -> list[Record]:
    return await bus.publish_batch(TOPIC, list(messages))


async def test_the_newest_version_per_key_wins_whatever_the_order() -> None:
    bus = await new_bus()
    await publish(bus, record_of(sa_message("SA-1", version=2, sa_status="30")),
                  record_of(sa_message("SA-1", version=1)),
                  record_of(sa_message("SA-2", version=1)),
                  Message(b"PERSON:PER-1", encode(person_message("PER-1"))))
    bounds, latest = await rebuild_latest(bus, TOPIC)
    assert bounds.total == 4
    assert latest.records == 4
    assert latest.superseded == 1
    sas = latest.sa_messages()
    assert sorted(sas) == ["SA-1", "SA-2"]
    assert (sas["SA-1"].version, sas["SA-1"].sa_status) == (2, "30")
    assert "PERSON:PER-1" in latest.messages
    assert latest.problems == []


async def test_an_equal_version_read_again_replaces_the_earlier_one() -> None:
    bus = await new_bus(1)
    first = sa_message("SA-1", version=3, sync_request_id="SR-1")
    again = sa_message("SA-1", version=3, sync_request_id="SR-2")
    await publish(bus, record_of(first), record_of(again))
    _, latest = await rebuild_latest(bus, TOPIC)
    assert latest.sa_messages()["SA-1"].sync_request_id == "SR-2"


async def test_undecodable_records_are_counted_problems_and_the_replay_goes_on() -> None:
    bus = await new_bus(1)
    written = await publish(
        bus, Message(b"SA:SA-1", b"{not json"),
        Message(b"SA:SA-2", b'{"schemaVersion": 9, "entityType": "SA"}'),
        record_of(sa_message("SA-3")),
        Message(b"SA:SA-9", encode(sa_message("SA-4"))))  # key of another entity
    _, latest = await rebuild_latest(bus, TOPIC)
    assert sorted(latest.sa_messages()) == ["SA-3"]
    assert [(p.offset, p.key) for p in latest.problems] == [
        (written[0].offset, "SA:SA-1"), (written[1].offset, "SA:SA-2"),
        (written[3].offset, "SA:SA-9")]
    assert latest.problems[0].reason.startswith("bad_json: <message>: not valid JSON")
    assert "unknown schema version 9" in latest.problems[1].reason
    assert "does not match the message's entity 'SA:SA-4'" in latest.problems[2].reason
    assert latest.to_dict()["problems"][0]["partition"] == written[0].partition


async def test_a_tombstone_removes_the_key() -> None:
    bus = await new_bus(1)
    await publish(bus, record_of(sa_message("SA-1")), Message(b"SA:SA-1", None),
                  record_of(sa_message("SA-2")))
    _, latest = await rebuild_latest(bus, TOPIC)
    assert sorted(latest.sa_messages()) == ["SA-2"]
    assert latest.tombstones == 1


async def test_the_replay_stops_at_the_ends_frozen_when_it_started() -> None:
    """Records written during the replay are left for the next one: it ends on a busy topic."""
    bus = await new_bus(2)
    await publish(bus, *(record_of(sa_message(f"SA-{n}")) for n in range(10)))
    bounds = await replay_bounds(bus, TOPIC)
    seen: list[Record] = []
    async for batch in replay_batches(bus, bounds, max_records=3):
        seen.extend(batch)
        await publish(bus, record_of(sa_message(f"SA-late-{len(seen)}")))
    assert len(seen) == 10
    assert {record.key for record in seen} == {f"SA:SA-{n}".encode() for n in range(10)}
    assert all(record.offset < bounds.end[record.partition] for record in seen)
    for partition in (0, 1):
        offsets = [r.offset for r in seen if r.partition == partition]
        assert offsets == sorted(offsets) == list(range(bounds.end[partition]))


async def test_since_starts_at_the_first_record_at_or_after_the_time() -> None:
    bus = await new_bus(1)
    await publish(bus, record_of(sa_message("SA-old"), T0),
                  record_of(sa_message("SA-new"), T0 + dt.timedelta(minutes=5)),
                  record_of(sa_message("SA-newer"), T0 + dt.timedelta(minutes=9)))
    bounds, latest = await rebuild_latest(bus, TOPIC, since=T0 + dt.timedelta(minutes=1))
    assert (bounds.start[0], bounds.end[0]) == (1, 3)
    assert sorted(latest.sa_messages()) == ["SA-new", "SA-newer"]
    _, none = await rebuild_latest(bus, TOPIC, since=T0 + dt.timedelta(days=1))
    assert none.records == 0


async def test_since_needs_a_time_zone() -> None:
    bus = await new_bus(1)
    with pytest.raises(ValueError, match="has no time zone"):
        await replay_bounds(bus, TOPIC, dt.datetime(2025, 3, 3, 12))


async def test_progress_counts_offsets_up_to_the_total() -> None:
    bus = await new_bus(3)
    await publish(bus, *(record_of(sa_message(f"SA-{n}")) for n in range(7)))
    calls: list[tuple[int, int]] = []
    await rebuild_latest(bus, TOPIC, progress=lambda done, total: calls.append((done, total)),
                         max_records=2)
    assert calls[0] == (0, 7)
    assert calls[-1] == (7, 7)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


async def test_an_empty_topic_replays_nothing_and_an_unknown_one_is_an_error() -> None:
    bus = await new_bus(3)
    bounds, latest = await rebuild_latest(bus, TOPIC)
    assert (bounds.total, latest.records) == (0, 0)
    with pytest.raises(UnknownTopicError, match="'nope' does not exist"):
        await rebuild_latest(bus, "nope")


# --- the single-pass decoding agrees with the codec -----------------------------------------


def codec_result(value: bytes) -> object:
    try:
        return decode_sync_message(value)
    except DecodeError as error:
        return ("error", str(error))


def replay_result(value: bytes) -> object:
    try:
        return decode_for_replay(value)
    except DecodeError as error:
        return ("error", str(error))


@pytest.mark.parametrize("value", [
    b'{"entityType":"SA"}',
    encode(sa_message()).replace(b'"schemaVersion":1,', b""),
    encode(sa_message()).replace(b'"schemaVersion":1', b'"schemaVersion":true'),
    encode(sa_message()).replace(b'"schemaVersion":1', b'"schemaVersion":1.0'),
    encode(sa_message()).replace(b'"schemaVersion":1', b'"schemaVersion": 1'),
    encode(sa_message())[:-1] + b',"schemaVersion":true}',
    encode(sa_message()).replace(b'"entityType":"SA"', b'"entityType":"US"'),
    b"\xff\xfe",
])
def test_lenient_readings_are_left_to_the_codec(value: bytes) -> None:
    assert replay_result(value) == codec_result(value)


@given(sa_messages(), st.integers(0, 2000), st.binary(max_size=3))
def test_decode_for_replay_equals_the_codec(message: SaSyncMessage, at: int,
                                            noise: bytes) -> None:
    value = encode(message)
    assert decode_for_replay(value) == message
    position = at % (len(value) + 1)
    mutated = value[:position] + noise + value[position + len(noise):]
    assert replay_result(mutated) == codec_result(mutated)


async def test_a_newest_record_that_does_not_decode_is_a_problem_and_its_key_left_out() -> None:
    """Only the newest record of a key is decoded in full; when it fails nothing older stands
    in for it (MDM dead-lettered it too)."""
    bus = await new_bus(1)
    broken = encode(sa_message("SA-1", version=2)).replace(b'"saStatus":"20"',
                                                           b'"saStatus":"99"')
    written = await publish(bus, record_of(sa_message("SA-1", version=1)),
                            Message(b"SA:SA-1", broken), record_of(sa_message("SA-2")))
    _, latest = await rebuild_latest(bus, TOPIC)
    assert sorted(latest.sa_messages()) == ["SA-2"]
    [problem] = latest.problems
    assert (problem.offset, problem.key) == (written[1].offset, "SA:SA-1")
    assert "saStatus" in problem.reason
    assert latest.to_dict()["keys"] == 1
