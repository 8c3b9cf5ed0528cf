"""One sync record in, its answer stored: decode, map, apply and acknowledge, or dead-letter.

The processor knows no transport. A runner hands it records in offset order per partition and
publishes what it stored (:mod:`sync.worker.publisher`). Every outcome is one store transaction
that also records the record's position, so:

- a crash before the commit re-reads the record; after it, the record is never read again, and
  its acknowledgement (or dead letter) waits in the outbox to be published;
- a record read twice (a runner that resumed too early) is answered once: the second time the
  store reports the position as consumed and nothing changes.

Failures that are the message's fault (undecodable, unmappable, an apply that keeps failing
while the store answers) become dead letters and the stream goes on. A store that does not
answer is nobody's message's fault: :class:`StoreUnavailableError` tells the runner to stop
and retry the same record later, so nothing is skipped during an outage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenacity import Retrying, stop_after_attempt, wait_exponential

from sync.clock import Clock
from sync.mapping.codec import DecodeError, decode_sync_message_in_one_pass, encode
from sync.mapping.messages import SyncMessage
from sync.mapping.sa_to_us import acknowledgement_for, command_for
from sync.mdm.decision import ApplyDecision, Outcome
from sync.mdm.ports import (
    AckRecord,
    BatchItem,
    BatchResult,
    Consumed,
    ConsumedPosition,
    ConsumeItem,
    ConsumerStorePort,
    DeadLetterItem,
    DeadLetterRecord,
    OutboxEntry,
    OutboxKind,
)
from sync.storage.common import first_line
from sync.transport.bus import Record
from sync.worker.dead_letters import FailureKind, dead_letter_for, decode_failure
from sync.worker.stats import Verdict, WorkerStats


class StoreUnavailableError(Exception):
    """The MDM store did not answer: the record was not consumed and must be tried again."""


class StoreLostWorkError(Exception):
    """The MDM store came back from an outage without work it had confirmed: its consumed
    positions are behind what the worker had processed. Reading on would skip those records;
    the worker must read again from the store's positions (a restart does)."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A record of the sync topic as any transport delivers it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None

    @classmethod
    def from_bus(cls, record: Record) -> SourceRecord:
        return cls(record.topic, record.partition, record.offset, record.key, record.value,
                   record.timestamp_ms)

    @property
    def position(self) -> ConsumedPosition:
        return ConsumedPosition(self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class ProcessedBatch:
    """What processing a batch did: a verdict per record, and the answers it stored."""

    verdicts: list[Verdict]
    # The acknowledgements and dead letters stored for the batch's records, in consumption
    # order; None when they are not known here (records consumed one by one), and the
    # publisher reads them from the outboxes instead.
    answers: list[OutboxEntry] | None


@dataclass(frozen=True, slots=True)
class ApplyRetry:
    """How often an apply that raises is tried before the message is dead-lettered."""

    attempts: int = 4
    initial_wait_s: float = 0.1
    max_wait_s: float = 2.0

    def retrying(self) -> Retrying:
        return Retrying(stop=stop_after_attempt(self.attempts), reraise=True,
                        wait=wait_exponential(multiplier=self.initial_wait_s,
                                              max=self.max_wait_s))


log = logging.getLogger(__name__)

_OUTCOME_VERDICT = {Outcome.APPLIED: Verdict.APPLIED, Outcome.REJECTED: Verdict.REJECTED,
                    Outcome.DUPLICATE: Verdict.DUPLICATE}


class MdmProcessor:
    """Consumes sync records into an MDM store. Blocking (database calls): async runners call
    :meth:`process` from a worker thread."""

    def __init__(self, store: ConsumerStorePort, clock: Clock, *,
                 retry: ApplyRetry | None = None, stats: WorkerStats | None = None) -> None:
        self.store = store
        self.clock = clock
        self.retry = retry or ApplyRetry()
        self.stats = stats or WorkerStats()

    def process(self, record: SourceRecord) -> Verdict:
        verdict = self._consume(record)
        self._counted(record, verdict)
        return verdict

    def process_batch(self, records: Sequence[SourceRecord]) -> list[Verdict]:
        """Process ``records`` (in offset order per partition) in one store transaction, with
        the same verdicts and stored answers as :meth:`process` one by one. When the batch
        fails while the store answers, something in it is a message's fault (or a bug): the
        records are then processed one by one, so that one message cannot hold up the rest
        and is dead-lettered alone."""
        return self.process_batch_answered(records).verdicts

    def process_batch_answered(self, records: Sequence[SourceRecord]) -> ProcessedBatch:
        """:meth:`process_batch`, also returning the answers the batch stored, as the
        outboxes hold them, so that they can be published without being read back."""
        if len(records) <= 1:
            return ProcessedBatch([self.process(record) for record in records], None)
        items = [self._prepare(record) for record in records]
        try:
            results = self.store.consume_batch(items)
        except Exception as error:
            self._require_reachable(error)
            log.warning("a batch of %d records failed (%s); processing them one by one",
                        len(records), first_line(error))
            return ProcessedBatch([self.process(record) for record in records], None)
        verdicts = [_verdict(result) for result in results]
        for record, verdict in zip(records, verdicts, strict=True):
            self._counted(record, verdict)
        return ProcessedBatch(verdicts, _answers(items, results))

    def _counted(self, record: SourceRecord, verdict: Verdict) -> None:
        self.stats.count(verdict)
        self.stats.processed(record.topic, record.partition, record.offset)

    def _prepare(self, record: SourceRecord) -> BatchItem:
        """The batch item of ``record``: its command to consume, or its dead letter when it
        cannot be decoded or mapped."""
        if record.value is None:
            return self._letter(record, FailureKind.TOMBSTONE, [(
                "", "a tombstone (no value) carries no snapshot to apply")],
                "tombstone: the record has a key and no value")
        try:
            message = decode_sync_message_in_one_pass(record.value)
        except DecodeError as error:
            return self._letter(record, *decode_failure(error))
        try:
            command = command_for(message)
        except Exception as error:  # a bug or a gap in the mapping: the message cannot pass
            return self._letter(record, FailureKind.MAPPING_FAILED, [("", first_line(error))],
                                f"mapping_failed: {first_line(error)}")
        return ConsumeItem(record.position, command, self._acknowledger(message))

    def _consume(self, record: SourceRecord) -> Verdict:
        item = self._prepare(record)
        if isinstance(item, DeadLetterItem):
            return self._store_letter(item)
        try:
            consumed = self._with_retries(item)
        except StoreUnavailableError:
            raise
        except Exception as error:
            return self._store_letter(self._letter(
                record, FailureKind.APPLY_FAILED, [("", first_line(error))],
                f"apply_failed after {self.retry.attempts} attempts: {first_line(error)}"))
        return _verdict(consumed)

    def _with_retries(self, item: ConsumeItem) -> Consumed | None:
        """What the store did; raises the last error once the attempts are used up."""
        try:
            for attempt in self.retry.retrying():
                with attempt:
                    return self.store.consume(item.position, item.command, item.acknowledge)
        except Exception as error:
            self._require_reachable(error)
            raise
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _acknowledger(self, message: SyncMessage) -> Callable[[ApplyDecision | None], AckRecord]:
        def acknowledge(decision: ApplyDecision | None) -> AckRecord:
            ack = acknowledgement_for(message, decision, self.clock.now())
            return AckRecord(sync_request_id=ack.sync_request_id,
                             entity_type=ack.entity_type.value, entity_id=ack.entity_id,
                             version=ack.version, outcome=ack.outcome.value,
                             document=encode(ack).decode("utf-8"))
        return acknowledge

    def _letter(self, record: SourceRecord, failure: FailureKind,
                problems: list[tuple[str, str]], message: str) -> DeadLetterItem:
        letter = dead_letter_for(
            topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, value=record.value, timestamp_ms=record.timestamp_ms,
            failure=failure, problems=problems, message=message, at=self.clock.now())
        return DeadLetterItem(record.position, DeadLetterRecord(
            record.key, failure.value, letter.model_dump_json(by_alias=True)))

    def _store_letter(self, item: DeadLetterItem) -> Verdict:
        try:
            stored = self.store.dead_letter(item.position, item.record)
        except Exception as error:
            self._require_reachable(error)
            raise StoreUnavailableError(
                f"cannot store the dead letter of {item.position}: {first_line(error)}"
            ) from error
        return Verdict.DEAD_LETTERED if stored else Verdict.ALREADY_CONSUMED

    def _require_reachable(self, cause: Exception) -> None:
        """Raise :class:`StoreUnavailableError` when the store does not answer a ping: the
        failure is then the outage, not the message."""
        try:
            self.store.ping()
        except Exception as error:
            raise StoreUnavailableError(
                f"MDM store unreachable: {first_line(error)} (while: {first_line(cause)})"
            ) from cause


def _answers(items: Sequence[BatchItem], results: Sequence[BatchResult]
             ) -> list[OutboxEntry]:
    """The answers the batch stored: one per record answered now (a record answered before
    had its answer stored then, and it is published from the outboxes)."""
    answers = []
    for item, result in zip(items, results, strict=True):
        if isinstance(result, Consumed):
            answers.append(OutboxEntry(OutboxKind.ACKNOWLEDGEMENT, result.ack.key.encode(),
                                  result.ack.document.encode(), item.position))
        elif result is True and isinstance(item, DeadLetterItem):
            answers.append(OutboxEntry(OutboxKind.DEAD_LETTER, item.record.source_key,
                                  item.record.document.encode(), item.position))
    return answers


def _verdict(result: BatchResult) -> Verdict:
    """The verdict of one stored answer."""
    if isinstance(result, bool):
        return Verdict.DEAD_LETTERED if result else Verdict.ALREADY_CONSUMED
    if result is None:
        return Verdict.ALREADY_CONSUMED
    if result.decision is None:
        return Verdict.SYNCHRONIZED
    return _OUTCOME_VERDICT[result.decision.outcome]
