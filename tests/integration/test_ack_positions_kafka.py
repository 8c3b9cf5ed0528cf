"""The acknowledgement consumer on a real Apache Kafka restarts with the CCB database's
positions behind the consumer group's commit (the database lost the transactions of answers
the group had committed): it reads those answers again instead of going on from the commit."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from sync.pipeline.acks import GROUP_ID, AckConsumer, AckConsumerReport
from sync.transport.bus import TopicPartition
from tests.integration.pipeline_support import loaded_pipeline, pipeline_settings

pytestmark = pytest.mark.kafka


async def consume_until(acks: AckConsumer, done: Any, tries: int = 30) -> AckConsumerReport:
    """Batches until ``done()`` (a real broker may take a moment to hand records out)."""
    total = AckConsumerReport()
    for _ in range(tries):
        if done():
            break
        total.add(await acks.consume_batch(timeout_ms=1000))
    return total


async def test_step_1_4_a_restarted_consumer_reads_again_what_the_ccb_database_lost(
        kafka_broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = await loaded_pipeline(pipeline_settings(kafka_broker.url, tmp_path, "lost",
                                                       partitions=1))
    topic = pipeline.settings.topics.acknowledgements
    partition = TopicPartition(topic, 0)
    database = tmp_path / "ccb.db"

    def sent() -> int:
        return pipeline.outbox.counts()["SENT"]

    try:
        await pipeline.relay.drain()
        await pipeline.mdm_worker.drain()
        answers = sent()
        assert answers >= 9
        assert (await pipeline.bus.end_offsets(topic))[0] == answers

        first = AckConsumer(pipeline.outbox, pipeline.bus, pipeline.settings.topics,
                            pipeline.clock, max_records=3)
        applied = await consume_until(first, lambda: sent() < answers)
        assert 0 < applied.read <= 3
        pipeline.outbox.store.dispose()  # closing the last connection folds the WAL in
        confirmed = database.read_bytes()
        await consume_until(first, lambda: sent() == 0)
        assert sent() == 0
        await first.close()
        watcher = await pipeline.bus.consumer([topic], group_id=GROUP_ID)
        assert await watcher.committed(partition) == answers
        await watcher.stop()

        # The CCB database comes back without what it confirmed after the first batch.
        pipeline.outbox.store.dispose()
        database.write_bytes(confirmed)
        assert sent() == answers - applied.read
        stored = pipeline.outbox.ack_positions(topic)
        assert stored == {0: applied.read - 1}

        caplog.set_level(logging.WARNING)
        restarted = AckConsumer(pipeline.outbox, pipeline.bus, pipeline.settings.topics,
                                pipeline.clock)
        report = await consume_until(restarted, lambda: sent() == 0)
        await restarted.close()
        assert report.read_again == 1
        counts = pipeline.outbox.counts()
        assert (counts["SENT"], counts["SYNCHRONIZED"]) == (0, answers)
        assert pipeline.outbox.ack_positions(topic) == {0: answers - 1}
        assert (f"the CCB database lost transactions it had confirmed: {topic} partition 0 "
                f"from offset {applied.read} (the consumer was at {answers})") in caplog.text
        # The group's commit is kept for monitoring: where the consumer stands now.
        watcher = await pipeline.bus.consumer([topic], group_id=GROUP_ID)
        assert await watcher.committed(partition) == answers
        await watcher.stop()
    finally:
        await pipeline.stop()
