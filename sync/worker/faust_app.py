"""The MDM worker as a faust-streaming agent (pinned 0.15.3; docs/worker.md has the reasons).

faust delivers the records; everything that decides correctness stays ours:

- **Resume from the store.** When partitions are assigned, the offsets after the last record the
  MDM store consumed are committed for the group and sought to. faust seeks every assigned
  partition to the group's committed offsets once its rebalance completes (after the
  ``on_partitions_assigned`` signal), so committing the store's offsets is what makes that seek
  land right; the seek alone would be overridden. A partition the store never read starts at
  its beginning. faust's own periodic commits only ever trail the store.
- **Batches.** The agent takes up to ``BATCH_RECORDS`` events at a time and the processor
  consumes them in one store transaction (:meth:`MdmProcessor.process_batch`).
- **Skip what is consumed.** A record below the resume offset (faust fetched it before the seek)
  is skipped without a database round trip; the store's unique source position catches any
  other re-read.
- **Nothing escapes the agent.** An exception leaving a faust agent acks the record and loses
  it: the processor turns message failures into dead letters, and a store outage is waited out
  on the same record, inside the loop.
- **Raw bytes in.** Key and value use the ``raw`` codec; the codec of ``sync.mapping`` decodes,
  so a bad message is a dead letter with its bytes, not a faust deserialization crash.
- **faust creates no topics.** The sync topic is declared as it is (external, its partition
  count) and topic declaration is off; ``c2m-sync topics create`` owns topic settings. The
  leader topic faust would otherwise create is disabled too.
- **Answers go out through the Bus port** (an idempotent ``acks=all`` producer) after every
  batch, every ``PUBLISH_EVERY_S`` seconds (what a failed publication left), and first of all
  on every assignment (what a crash left unpublished).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import faust

from sync.clock import Clock
from sync.config.settings import Settings
from sync.mdm.ports import ConsumerStorePort
from sync.storage.common import first_line
from sync.transport.bus import Bus
from sync.transport.security import faust_credentials
from sync.worker.health import HealthCheck
from sync.worker.housekeeping import DailyPurge
from sync.worker.mdm_processor import (
    ApplyRetry,
    MdmProcessor,
    SourceRecord,
    StoreLostWorkError,
    StoreUnavailableError,
)
from sync.worker.publisher import OutboxPublisher
from sync.worker.resume import behind_processed, resume_offsets
from sync.worker.stats import Verdict, WorkerStats

log = logging.getLogger(__name__)

APP_ID = "c2m-sync-mdm"
PUBLISH_EVERY_S = 0.5
# Records are consumed in batches of up to this many (one MDM transaction each), gathered for at
# most BATCH_WITHIN_S: a batch is what makes thousands of records a second possible, the short
# wait keeps a quiet stream's latency low.
BATCH_RECORDS = 500
BATCH_WITHIN_S = 0.02
OUTAGE_WAIT_S = 0.5
OUTAGE_MAX_WAIT_S = 10.0


def build_app(settings: Settings, store: ConsumerStorePort, clock: Clock, publisher_bus: Bus,
              *, stats: WorkerStats | None = None, retry: ApplyRetry | None = None,
              app_id: str = APP_ID, web_port: int = 0, web_host: str = "127.0.0.1",
              data_dir: Path | None = None, session_timeout_s: float = 10.0) -> faust.App:
    """A faust app consuming ``settings.topics.sync_requests`` into ``store``; answers are
    published through ``publisher_bus`` (started by the caller). ``web_port`` 0 disables
    faust's web server, else it serves ``GET /health`` there."""
    stats = stats or WorkerStats()
    topic_name = settings.topics.sync_requests
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=faust_credentials(settings.kafka_security),
        autodiscover=False,
        datadir=str(data_dir or Path(tempfile.gettempdir()) / f"{app_id}-data"),
        key_serializer="raw", value_serializer="raw",
        topic_allow_declare=False, topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # A worker killed without leaving the group holds its partitions until this passes.
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=max(1.0, session_timeout_s / 4),
        broker_rebalance_timeout=session_timeout_s * 2,
        web_enabled=web_port > 0, web_port=web_port or 6066, web_bind=web_host,
        web_host=web_host,
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", partitions=settings.topic_partitions,
                      internal=False, allow_empty=True)
    processor = MdmProcessor(store, clock, retry=retry, stats=stats)
    publisher = OutboxPublisher(store, publisher_bus.publish_batch, settings, clock, stats)
    # partition -> first offset not yet consumed, as of the last assignment
    resume_from: dict[int, int] = {}

    async def publish() -> None:
        try:
            await publisher.publish_pending()
        except Exception as error:  # stays in the outbox; the timer tries again
            stats.failed(f"publishing answers failed: {error}", clock.now())
            log.warning("publishing answers failed (kept for the next try): %s", error)

    async def resume(_app: faust.App, assigned: set[Any], **_: Any) -> None:
        await publish()
        partitions = sorted((tp for tp in assigned if tp.topic == topic_name),
                            key=lambda tp: tp.partition)
        if not partitions:
            return
        consumer: Any = app.consumer  # the driver's consumer: ``_commit`` takes any offsets
        beginning = await consumer.earliest_offsets(*partitions)
        ends = await consumer.highwaters(*partitions)
        consumed = await asyncio.to_thread(store.last_positions, topic_name)
        offsets = resume_offsets(
            topic_name, consumed, {tp.partition: beginning[tp] for tp in partitions},
            {tp.partition: ends[tp] for tp in partitions})
        by_tp = {tp: offsets[tp.partition] for tp in partitions}
        # faust's recovery seeks to the committed offsets after this signal: commit ours.
        if not await consumer._commit(by_tp):
            raise RuntimeError(f"could not commit resume offsets {by_tp} for {app_id}")
        for tp, offset in by_tp.items():
            await consumer.seek(tp, offset)
        resume_from.update(offsets)
        for tp in partitions:
            stats.end_offsets[(topic_name, tp.partition)] = ends[tp]
        stats.recovered()
        log.info("resuming %s at %s", topic_name, offsets)

    app.on_partitions_assigned.connect(resume)  # type: ignore[arg-type]

    @app.agent(topic, concurrency=1)
    async def consume(stream: Any) -> None:
        async for events in stream.take_events(BATCH_RECORDS, within=BATCH_WITHIN_S):
            records = []
            for event in events:
                message = event.message
                if message.offset < resume_from.get(message.partition, 0):
                    stats.count(Verdict.ALREADY_CONSUMED)
                    continue
                records.append(SourceRecord(
                    message.topic, message.partition, message.offset, message.key,
                    message.value,
                    None if message.timestamp is None else int(message.timestamp * 1000)))
                stats.end_offsets[(topic_name, message.partition)] = max(
                    stats.end_offsets.get((topic_name, message.partition), 0),
                    app.consumer.highwater(message.tp))
            if not records:
                continue
            try:
                await _process(processor, records, stats, clock)
            except StoreLostWorkError as error:
                # Stop the app before anything else is read: the worker exits with the error
                # and resumes from the store's positions when started again.
                log.error("%s", error)
                await app.crash(error)
                return
            # One publication per batch: a batch is already many answers in one broker
            # round trip, and publishing at once keeps a quiet stream's latency low.
            await publish()

    housekeeping = DailyPurge(store.purge_history, clock, "published acknowledgements")

    @app.timer(PUBLISH_EVERY_S)  # type: ignore[untyped-decorator]
    async def flush() -> None:
        await publish()
        await housekeeping.run_if_due()

    if web_port > 0:
        check = HealthCheck(stats, store)

        @app.page("/health")
        async def health(view: Any, _request: Any) -> Any:
            status, body = await check.report()
            return view.json(body, status=status)

    return app


async def _process(processor: MdmProcessor, records: list[SourceRecord], stats: WorkerStats,
                   clock: Clock) -> None:
    """Process a batch of records, waiting out a store outage on it: nothing may leave the
    agent. A batch tried again after a failure is answered once per record (by position).

    Before a batch is tried again after an outage, the store's consumed positions are checked
    against what this worker had processed: a database that lost confirmed transactions in a
    crash raises :class:`StoreLostWorkError` (faust cannot be sought back from inside its
    agent; a restart resumes from the store)."""
    wait = OUTAGE_WAIT_S
    outage = False
    while True:
        try:
            if outage:  # a blocking store read: off the event loop, as every store call
                await asyncio.to_thread(_check_nothing_lost, processor, records[0].topic, stats)
            await asyncio.to_thread(processor.process_batch, records)
        except StoreUnavailableError as error:
            outage = True
            stats.failed(str(error), clock.now())
        except StoreLostWorkError:
            raise
        except Exception as error:  # a bug: keep the record, say so, try again
            stats.failed(f"unexpected {type(error).__name__}: {error}", clock.now())
            log.exception("processing from %s failed", records[0].position)
        else:
            stats.recovered()
            return
        log.warning("retrying from %s in %.1f s: %s", records[0].position, wait,
                    stats.last_error)
        await asyncio.sleep(wait)
        wait = min(wait * 2, OUTAGE_MAX_WAIT_S)


def _check_nothing_lost(processor: MdmProcessor, topic: str, stats: WorkerStats) -> None:
    try:
        consumed = processor.store.last_positions(topic)
    except Exception as error:  # any failure to read is the outage going on
        raise StoreUnavailableError(
            f"MDM store unreachable: {first_line(error)}") from error
    processed = {partition: offset for (name, partition), offset
                 in stats.last_offsets.items() if name == topic}
    lost = behind_processed(consumed, processed)
    if lost:
        where = ", ".join(f"{topic}[{partition}] consumed up to {stored} of {done}"
                          for partition, (stored, done) in lost.items())
        raise StoreLostWorkError(
            f"the MDM store came back without transactions it had confirmed ({where}); "
            "stopping so that a restart reads them again from the store's positions")


async def run_faust_worker(app: faust.App, stop_event: asyncio.Event) -> None:
    """Run ``app`` in the running event loop until ``stop_event`` is set or the app crashes
    (its crash reason is raised)."""
    await app.start()
    try:
        while not stop_event.is_set() and not app._crashed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), 0.5)
    finally:
        await app.stop()
    reason = app._crash_reason
    if reason is not None:
        raise reason
