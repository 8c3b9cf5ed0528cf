"""A sync request larger than the sync topic takes is set aside (``ERROR``, ``SYNC-TOO-LARGE``,
a To Do) instead of holding up every request behind it; the others go out in queue order, and
a resend once the topic takes it sends the entity again. (Against the genuine broker:
tests/integration/test_kafka_record_batches.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.ccb.sync_requests import TOO_LARGE_CODE, SyncRequestState
from sync.pipeline.relay import Relay
from sync.transport.bus import Message, RecordTooLargeError, TopicSpec
from sync.transport.memory import MemoryBus
from sync.transport.topics import sync_topic_specs
from tests.integration.pipeline_support import loaded_pipeline, pipeline_settings


async def test_step_1_4_a_request_too_large_for_the_topic_is_set_aside_with_a_todo(
        tmp_path: Path) -> None:
    pipeline = await loaded_pipeline(pipeline_settings("memory://", tmp_path, "too-large"))
    try:
        outbox = pipeline.outbox
        queue = outbox.next_batch(1_000)
        sizes = sorted(len(r.key) + len(r.payload) for r in queue)
        limit = sizes[len(sizes) // 2]  # the larger half cannot be written
        too_large = {r.id for r in queue if len(r.key) + len(r.payload) > limit}
        assert 0 < len(too_large) < len(queue)
        bus = MemoryBus(max_record_bytes=limit)
        topic = pipeline.settings.topics.sync_requests
        await bus.create_topics(sync_topic_specs(pipeline.settings))
        relay = Relay(outbox, bus, topic, pipeline.clock, batch_size=1_000)

        report = await relay.drain()

        assert (report.published, report.set_aside) == (len(queue) - len(too_large),
                                                       len(too_large))
        for request in queue:
            stored = outbox.get(request.id)
            assert stored is not None
            if request.id in too_large:
                assert stored.state is SyncRequestState.ERROR
                [error] = stored.errors
                assert error.code == TOO_LARGE_CODE
                assert f"larger than the {limit} bytes" in error.message
            else:
                assert stored.state is SyncRequestState.SENT
        # The rest went out in queue order, nothing refused on the topic.
        consumer = await bus.consumer([topic])
        written = sorted(await consumer.getmany(max_records=10_000),
                         key=lambda record: record.timestamp_ms)
        await consumer.stop()
        sent_ids = [dict(r.headers)["sync-request-id"].decode() for r in written]
        assert sorted(sent_ids) == sorted(r.id for r in queue if r.id not in too_large)
        # One To Do per entity set aside, saying what to do.
        todos = outbox.store.read(lambda view: view.todos())
        drilled = {todo.drill_key.id: todo for todo in todos}
        for request in queue:
            if request.id in too_large:
                todo = drilled[request.entity_id]
                assert "refused" in todo.message
                assert "max.message.bytes" in todo.message
                assert f"c2m-sync ccb sync resend {request.id}" in todo.message
        assert len(todos) == len(too_large)

        # The topic's limit raised: a resend queues the entity again and it goes out.
        bus.max_record_bytes = None
        first = next(r for r in queue if r.id in too_large)
        resent = outbox.resend(first.id, pipeline.clock.now())
        assert resent.state is SyncRequestState.PENDING
        again = await relay.drain()
        assert (again.published, again.set_aside) == (1, 0)
        assert outbox.get(resent.id).state is SyncRequestState.SENT  # type: ignore[union-attr]
    finally:
        await pipeline.stop()


async def test_the_memory_bus_refuses_a_record_above_its_limit_whole() -> None:
    bus = MemoryBus(max_record_bytes=10)
    await bus.create_topics([TopicSpec("limited", 3)])
    with pytest.raises(RecordTooLargeError, match="a record of 21 bytes is larger than the 10"):
        await bus.publish_batch("limited", [Message(b"k", b"small"), Message(b"k", b"x" * 20)])
    assert await bus.end_offsets("limited") == dict.fromkeys(range(3), 0)
