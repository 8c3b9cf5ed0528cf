"""Bounded replay of the sync topic: read it from the beginning (or from a time) up to where it
ended when the replay started, and rebuild the latest snapshot per key.

The replay reads with a throwaway consumer (no consumer group: nothing is committed, no live
worker's position moves). The end offsets are read once, before the first record, and frozen:
records written while the replay runs are left for the next one, so a replay of a busy topic
still ends. A partition is done when the consumer's position reaches its frozen end (not when a
record with offset ``end - 1`` is seen: compaction may have removed it).

Rebuilding keeps, per message key (``"SA:<id>"``), the message with the highest ``version``
(an equal version read again, a re-publication, replaces the earlier one). A record that cannot
be decoded is kept as a counted :class:`ReplayProblem` with its position; the replay goes on. A
tombstone (a key without a value) removes the key, as compaction would. Only the newest record
of each key is decoded in full: the others need just their envelope (entity and version), which
reads in a fraction of the time (see :class:`LatestSnapshots`).

Decoding is the codec's (:func:`~sync.mapping.codec.decode_sync_message`), in one pass:
:func:`decode_for_replay` (the codec's
:func:`~sync.mapping.codec.decode_sync_message_in_one_pass`) validates the bytes straight into
the models and falls back to the codec's checks for anything the single pass would read more
leniently, so both accept exactly the same records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync.mapping.codec import DecodeError, decode_sync_message, decode_sync_message_in_one_pass
from sync.mapping.messages import EntityType, SaSyncMessage, SyncMessage
from sync.transport.bus import Bus, Record, TopicPartition

# (offsets covered so far, offsets to cover); a compacted topic has fewer records than offsets.
ProgressCallback = Callable[[int, int], None]

# Records one poll may return; larger than the bus default because the replay does nothing
# between polls but decode.
REPLAY_BATCH = 5000


class ReplayError(Exception):
    """The replay could not read the topic to its frozen end."""


@dataclass(frozen=True)
class ReplayBounds:
    """Where the replay starts and where it stops, per partition (offsets, end exclusive)."""

    topic: str
    start: Mapping[int, int]
    end: Mapping[int, int]

    @property
    def total(self) -> int:
        return sum(max(0, self.end[p] - self.start.get(p, 0)) for p in self.end)

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partitions": [
            {"partition": p, "start": self.start.get(p, 0), "end": self.end[p]}
            for p in sorted(self.end)]}


def since_ms(since: dt.datetime) -> int:
    """Kafka timestamp (milliseconds since the epoch) of an aware datetime."""
    if since.tzinfo is None:
        raise ValueError(f"replay start {since.isoformat()} has no time zone")
    return int(since.timestamp() * 1000)


async def replay_bounds(bus: Bus, topic: str, since: dt.datetime | None = None) -> ReplayBounds:
    """The frozen end offsets, and the start: the beginning, or the first record at or after
    ``since``."""
    end = await bus.end_offsets(topic)
    if since is None:
        start = await bus.beginning_offsets(topic)
    else:
        found = await bus.offsets_for_time(topic, since_ms(since))
        # A record written between the two reads would place the start beyond the frozen end.
        start = {p: min(found.get(p, end[p]), end[p]) for p in end}
    return ReplayBounds(topic, start, end)


async def replay_batches(bus: Bus, bounds: ReplayBounds, *,
                         progress: ProgressCallback | None = None,
                         max_records: int = REPLAY_BATCH,
                         idle_timeout_s: float = 30.0) -> AsyncIterator[list[Record]]:
    """Every record inside ``bounds``, batch by batch, in offset order per partition.

    Raises :class:`ReplayError` when the broker delivers nothing for ``idle_timeout_s`` while
    some partition has not reached its end."""
    topic = bounds.topic
    remaining = {p for p in bounds.end if bounds.start.get(p, 0) < bounds.end[p]}
    covered = {p: 0 for p in bounds.end}
    total = bounds.total
    if progress is not None:
        progress(0, total)
    if not remaining:
        return
    consumer = await bus.consumer([topic])
    try:
        # Every partition, finished ones too: a consumer without a group would otherwise read
        # them from the beginning, only for the records to be thrown away.
        for partition in sorted(bounds.end):
            await consumer.seek(TopicPartition(topic, partition),
                                bounds.start.get(partition, bounds.end[partition]))
        last_progress = time.monotonic()
        while remaining:
            records = await consumer.getmany(timeout_ms=500, max_records=max_records)
            inside = [r for r in records
                      if r.partition in remaining and r.offset < bounds.end[r.partition]]
            for partition in list(remaining):
                position = await consumer.position(TopicPartition(topic, partition))
                position = min(position, bounds.end[partition])
                covered[partition] = position - bounds.start[partition]
                if position >= bounds.end[partition]:
                    remaining.discard(partition)
            if records:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout_s:
                stuck = ", ".join(f"{topic}[{p}] at {bounds.start[p] + covered[p]} of "
                                  f"{bounds.end[p]}" for p in sorted(remaining))
                raise ReplayError(f"no records for {idle_timeout_s:g} s before the end: {stuck}")
            if progress is not None:
                progress(sum(covered.values()), total)
            if inside:
                yield inside
    finally:
        await consumer.stop()


# --- decoding --------------------------------------------------------------------------------

# The replay's name for the codec's single-pass reading.
decode_for_replay = decode_sync_message_in_one_pass


# --- rebuilding the latest snapshot per key --------------------------------------------------


@dataclass(frozen=True)
class ReplayProblem:
    """A record the replay could not use."""

    partition: int
    offset: int
    key: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "offset": self.offset, "key": self.key,
                "reason": self.reason}


class _Envelope(BaseModel):
    """What choosing the newest record per key needs: read in a fraction of a full decode."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = Field(alias="schemaVersion")
    entity_type: EntityType = Field(alias="entityType")
    external_id: str = Field(alias="externalId", min_length=1)
    version: int = Field(alias="version", ge=1)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """The newest record of a key so far; decoded in full once it is known to be the newest."""

    version: int
    record: Record
    message: SyncMessage | None = None


@dataclass
class LatestSnapshots:
    """The newest message per key of the records offered so far.

    Each record's envelope (schema version, entity, version) is read to choose the newest per
    key; only the newest is decoded in full, when :attr:`messages` is first read. A newest
    record that then fails to decode is a problem, and its key is left out: nothing older
    stands in for it (MDM dead-lettered it too, and kept the version before)."""

    records: int = 0
    superseded: int = 0
    tombstones: int = 0
    _problems: list[ReplayProblem] = field(default_factory=list)
    _candidates: dict[str, _Candidate] = field(default_factory=dict)
    _messages: dict[str, SyncMessage] | None = None

    def offer(self, record: Record) -> None:
        self.records += 1
        self._messages = None
        key = None if record.key is None else record.key.decode("utf-8", "replace")
        if record.value is None:
            if key is not None and self._candidates.pop(key, None) is not None:
                self.superseded += 1
            self.tombstones += 1
            return
        candidate = self._candidate(record, key)
        if candidate is None:
            return
        assert key is not None
        held = self._candidates.get(key)
        if held is not None:
            self.superseded += 1
            if held.version > candidate.version:
                return
        self._candidates[key] = candidate

    def _candidate(self, record: Record, key: str | None) -> _Candidate | None:
        assert record.value is not None
        try:
            envelope = _Envelope.model_validate_json(record.value)
            entity, version, message = (f"{envelope.entity_type.value}:{envelope.external_id}",
                                        envelope.version, None)
        except ValidationError:
            try:  # the codec says what is wrong (or reads what the envelope did not)
                decoded = decode_sync_message(record.value)
            except DecodeError as error:
                self._problem(record, key, str(error))
                return None
            entity, version, message = decoded.key, decoded.version, decoded
        if key != entity:
            self._problem(record, key, "the record key does not match the message's entity "
                                       f"{entity!r}")
            return None
        return _Candidate(version, record, message)

    def _problem(self, record: Record, key: str | None, reason: str) -> None:
        self._problems.append(ReplayProblem(record.partition, record.offset, key, reason))

    @property
    def messages(self) -> dict[str, SyncMessage]:
        """The newest message per key."""
        if self._messages is None:
            self._messages = {}
            for key, candidate in list(self._candidates.items()):
                message = candidate.message
                if message is None:
                    value = candidate.record.value
                    assert value is not None
                    try:
                        message = decode_for_replay(value)
                    except DecodeError as error:
                        self._problem(candidate.record, key, str(error))
                        del self._candidates[key]
                        continue
                self._messages[key] = message
        return self._messages

    @property
    def problems(self) -> list[ReplayProblem]:
        """Unusable records, in partition and offset order."""
        self.messages  # noqa: B018 - decoding the newest records may find more
        return sorted(self._problems, key=lambda problem: (problem.partition, problem.offset))

    def sa_messages(self) -> dict[str, SaSyncMessage]:
        """The newest SA message per SA id."""
        return {message.external_id: message for message in self.messages.values()
                if isinstance(message, SaSyncMessage)}

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "keys": len(self.messages),
                "superseded": self.superseded, "tombstones": self.tombstones,
                "problems": [problem.to_dict() for problem in self.problems]}


async def rebuild_latest(bus: Bus, topic: str, *, since: dt.datetime | None = None,
                         progress: ProgressCallback | None = None,
                         max_records: int = REPLAY_BATCH) -> tuple[ReplayBounds, LatestSnapshots]:
    """Replay ``topic`` (bounded) and keep the newest snapshot per key."""
    bounds = await replay_bounds(bus, topic, since)
    latest = LatestSnapshots()
    async for batch in replay_batches(bus, bounds, progress=progress, max_records=max_records):
        for record in batch:
            latest.offer(record)
        await asyncio.sleep(0)  # let the consumer's fetcher run between large batches
    return bounds, latest

