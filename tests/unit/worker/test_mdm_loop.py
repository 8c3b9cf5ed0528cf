"""The MDM worker on the in-process bus: applies and acknowledges, dead-letters what it cannot
read and goes on, answers each source position once, resumes after the last consumed offset."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sync.mapping.codec import encode
from sync.mdm.ports import ConsumedPosition, DeadLetterRecord, OutboxEntry
from sync.transport.bus import PublishError, TopicPartition
from sync.worker.mdm_loop import run_mdm_loop
from sync.worker.resume import ResumeError
from sync.worker.stats import Verdict
from tests.unit.mapping.builders import person_message, relationship_message, sa_message
from tests.unit.worker.support import (
    CLOCK,
    FAST,
    SETTINGS,
    CrashingStore,
    Rig,
    by_request,
    new_rig,
)

TOPIC = SETTINGS.topics.sync_requests


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    created = await new_rig(f"sqlite:///{tmp_path / 'mdm.db'}")
    yield created
    created.store.dispose()


async def test_step_1_4_valid_messages_are_applied_and_acknowledged(rig: Rig) -> None:
    """Step 1.4: sync requests on the topic become usage subscriptions and acknowledgements."""
    await rig.send(person_message("PER-1"), sa_message("SA-1"),
                   sa_message("SA-2", sp_ids=("SP-2",)), sa_message("SA-1", version=2,
                                                                   sa_status="30",
                                                                   end=sa_message().start_date
                                                                   .replace(month=9)))
    counts = await rig.worker().drain()
    assert counts[Verdict.APPLIED] == 4
    us = rig.store.get_us("SA-1")
    assert us is not None
    assert (us.last_applied_version, us.status.value) == (2, "ACTIVE")
    assert rig.store.get_contact("PER-1") is not None
    acks = await rig.acks()
    assert by_request(acks) == {"SR-PER-1-1": "SYNCHRONIZED", "SR-SA-1-1": "SYNCHRONIZED",
                                "SR-SA-2-1": "SYNCHRONIZED", "SR-SA-1-2": "SYNCHRONIZED"}
    assert {ack.mdm_us_id for ack in acks if ack.entity_id == "SA-1"} == {"SA-1"}
    assert rig.store.unpublished(10) == []


async def test_messages_without_a_command_are_acknowledged_and_their_position_kept(
        rig: Rig) -> None:
    records = await rig.send(relationship_message("SA-SUB"),
                             sa_message("SA-DEP", us_type=None, sa_type="DEP-RES"))
    counts = await rig.worker().drain()
    assert counts[Verdict.SYNCHRONIZED] == 2
    assert rig.store.get_us("SA-DEP") is None
    assert by_request(await rig.acks()) == {"SR-SA-SUB-1": "SYNCHRONIZED",
                                            "SR-SA-DEP-1": "SYNCHRONIZED"}
    positions = rig.store.last_positions(TOPIC)
    assert all(positions[r.partition] >= r.offset for r in records)


async def test_malformed_messages_are_dead_lettered_and_the_valid_ones_around_them_applied(
        rig: Rig) -> None:
    unknown_version = encode(sa_message("SA-9")).replace(b'"schemaVersion":1',
                                                          b'"schemaVersion":7')
    wrong_schema = encode(sa_message("SA-8")).replace(b'"saStatus":"20"', b'"saStatus":"99"')
    before = await rig.send(sa_message("SA-1"))
    bad = await rig.send((b"SA:SA-7", b"{not json"), (b"SA:SA-8", wrong_schema),
                         (b"SA:SA-9", unknown_version), (b"\xfe\xff", b"\xff\xfe binary"),
                         (b"SA:SA-6", None))
    after = await rig.send(sa_message("SA-2", sp_ids=("SP-2",)))
    counts = await rig.worker().drain()
    assert (counts[Verdict.APPLIED], counts[Verdict.DEAD_LETTERED]) == (2, 5)
    assert rig.store.get_us("SA-1") is not None
    assert rig.store.get_us("SA-2") is not None
    letters = {(letter["source"]["partition"], letter["source"]["offset"]): (key, letter)
               for key, letter in await rig.dead_letters()}
    assert set(letters) == {(r.partition, r.offset) for r in bad}
    for record in bad:
        key, letter = letters[(record.partition, record.offset)]
        assert key == record.key  # the dead letter's key is the source key
        assert letter["source"]["topic"] == TOPIC
        assert letter["source"]["timestampMs"] == record.timestamp_ms
        assert letter["deadLetteredAt"] == CLOCK.now().isoformat().replace("+00:00", "Z")
    failures = {key: (letter["error"]["failure"], letter["error"]["problems"][0]["path"])
                for key, letter in letters.values()}
    assert failures == {b"SA:SA-7": ("bad_json", ""), b"SA:SA-8": ("wrong_schema", "saStatus"),
                        b"SA:SA-9": ("unknown_schema_version", "schemaVersion"),
                        b"\xfe\xff": ("bad_json", ""), b"SA:SA-6": ("tombstone", "")}
    by_key = {key: letter for key, letter in letters.values()}
    assert (by_key[b"SA:SA-7"]["value"], by_key[b"SA:SA-7"]["valueEncoding"]) == (
        "{not json", "utf-8")
    binary = by_key[b"\xfe\xff"]
    assert base64.b64decode(binary["value"]) == b"\xff\xfe binary"
    assert (binary["valueEncoding"], binary["source"]["keyEncoding"]) == ("base64", "base64")
    assert by_key[b"SA:SA-6"]["value"] is None
    assert "unknown schema version 7" in by_key[b"SA:SA-9"]["error"]["message"]
    assert len(before + after) == len(await rig.acks())


async def test_the_same_messages_delivered_twice_change_nothing_the_second_time(
        rig: Rig) -> None:
    messages = [sa_message("SA-1"), sa_message("SA-1", version=2, sa_status="30",
                                                end=sa_message().start_date.replace(month=12)),
                person_message("PER-1")]
    await rig.send(*messages)
    worker = rig.worker()
    await worker.drain()
    first = rig.store.get_us("SA-1")
    await rig.send(*messages)
    counts = await worker.drain()
    assert counts[Verdict.DUPLICATE] == 3
    assert rig.store.get_us("SA-1") == first
    outcomes = [ack.outcome.value for ack in await rig.acks()]
    assert sorted(outcomes) == ["DUPLICATE"] * 3 + ["SYNCHRONIZED"] * 3


async def test_restart_resumes_after_the_last_consumed_offset(rig: Rig) -> None:
    await rig.send(*(sa_message(f"SA-{n}", sp_ids=(f"SP-{n}",)) for n in range(6)))
    first = rig.worker()
    await first.drain()
    await first.stop()
    await rig.send(*(sa_message(f"SA-{n}", version=2, sp_ids=(f"SP-{n}",))
                     for n in range(3)))
    counts = await rig.worker().drain()
    assert counts[Verdict.APPLIED] == 3  # only the new records were read
    assert counts[Verdict.ALREADY_CONSUMED] == 0
    assert rig.outbox_rows() == {"mdm_acknowledgements": 9, "mdm_dead_letters": 0}
    assert len(await rig.acks()) == 9


async def test_a_record_read_again_is_answered_once(rig: Rig) -> None:
    [record] = await rig.send(sa_message("SA-1"))
    worker = rig.worker()
    await worker.drain()
    # A runner that resumed too early reads the record again: the store knows its position.
    consumer = worker._require_started()
    await consumer.seek(TopicPartition(TOPIC, record.partition), record.offset)
    await worker.poll(asyncio.Event(), 0)
    assert worker.stats.counts[Verdict.ALREADY_CONSUMED] == 1
    assert rig.outbox_rows()["mdm_acknowledgements"] == 1
    assert len(await rig.acks()) == 1


async def test_answers_left_unpublished_by_a_crash_are_published_first_on_start(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    await rig.send(sa_message("SA-1"), b"garbage")
    crashing = rig.worker()

    async def broker_gone(*_: object) -> list[object]:
        raise PublishError("broker gone")

    monkeypatch.setattr(crashing.publisher, "_publish_batch", broker_gone)
    with pytest.raises(PublishError, match="broker gone"):
        await crashing.drain()  # consumed and committed; answers kept in the outbox
    assert crashing.stats.status.value == "failing"
    assert len(rig.store.unpublished(10)) == 2
    assert await rig.acks() == []
    restarted = rig.worker()
    await restarted.start()
    assert len(await rig.acks()) == 1
    assert len(await rig.dead_letters()) == 1
    assert rig.store.unpublished(10) == []


async def test_run_stops_on_the_event_and_idle_exit_drains(rig: Rig) -> None:
    await rig.send(sa_message("SA-1"))
    stop = asyncio.Event()
    stats = await run_mdm_loop(rig.bus, rig.store, SETTINGS, CLOCK, stop, idle_exit=True,
                               timing=FAST)
    assert stats.counts[Verdict.APPLIED] == 1
    running = asyncio.create_task(run_mdm_loop(rig.bus, rig.store, SETTINGS, CLOCK, stop,
                                               timing=FAST))
    await rig.send(sa_message("SA-2", sp_ids=("SP-2",)))
    for _ in range(200):
        if rig.store.get_us("SA-2") is not None and len(await rig.acks()) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    live = await asyncio.wait_for(running, 5)
    assert live.counts[Verdict.APPLIED] == 1
    assert len(await rig.acks()) == 2


async def test_a_store_ahead_of_the_topic_is_refused(rig: Rig) -> None:
    rig.store.dead_letter(ConsumedPosition(TOPIC, 0, 50), DeadLetterRecord(None, "bad_json", "{}"))
    with pytest.raises(ResumeError, match=r"consumed c2m.sync-requests\[0\] up to offset 50"):
        await rig.worker().start()


async def test_step_1_4_a_batch_the_store_lost_in_a_crash_is_read_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "crashing.db"
    rig = await new_rig(f"sqlite:///{path}")
    messages = [sa_message(f"SA-{n}", sp_ids=(f"SP-{n}",)) for n in range(12)]
    await rig.send(*messages)
    store = CrashingStore(rig.store, path, crash_after_batch=2, down_for_calls=3)
    worker = rig.worker(store=store, timing=replace(FAST, max_records=4))
    try:
        await worker.drain()
    finally:
        await worker.stop()
        rig.store.dispose()

    assert store.refused == 3  # the outage was waited out
    # Every record answered exactly once, the four of the lost batch included.
    assert rig.outbox_rows() == {"mdm_acknowledgements": 12, "mdm_dead_letters": 0}
    assert sorted(by_request(await rig.acks())) == sorted(m.sync_request_id for m in messages)
    for n in range(12):
        subscription = rig.store.get_us(f"SA-{n}")
        assert subscription is not None, f"SA-{n} lost"
    assert "the store lost transactions it had confirmed; reading them again" in caplog.text


async def test_answers_a_failed_publication_left_go_out_before_the_next_batch_s(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's answers are published from memory only while nothing stored earlier waits:
    after a failed publication the outboxes are read again, oldest first."""
    worker = rig.worker()
    await worker.start()
    publish_batch = worker.publisher._publish_batch

    async def broker_gone(*_: object) -> list[object]:
        raise PublishError("broker gone")

    monkeypatch.setattr(worker.publisher, "_publish_batch", broker_gone)
    await rig.send(sa_message("SA-1"), b"garbage")
    assert await worker.poll(asyncio.Event(), 0) == 2
    assert worker.stats.status.value == "failing"
    assert len(rig.store.unpublished(10)) == 2
    monkeypatch.setattr(worker.publisher, "_publish_batch", publish_batch)
    await rig.send(sa_message("SA-1", version=2, sa_status="30",
                              end=sa_message().start_date.replace(month=9)))
    assert await worker.poll(asyncio.Event(), 0) == 1
    assert [ack.sync_request_id for ack in await rig.acks()] == ["SR-SA-1-1", "SR-SA-1-2"]
    assert len(await rig.dead_letters()) == 1
    assert rig.store.unpublished(10) == []
    assert (worker.stats.acks_published, worker.stats.dead_letters_published) == (2, 1)
    await worker.stop()


async def test_a_batch_s_answers_are_published_without_reading_the_outboxes(rig: Rig) -> None:
    reads: list[int] = []
    unpublished = rig.store.unpublished

    def counted(limit: int) -> list[OutboxEntry]:
        reads.append(limit)
        return unpublished(limit)

    worker = rig.worker()
    await worker.start()
    rig.store.unpublished = counted  # type: ignore[method-assign]
    await rig.send(sa_message("SA-1"), sa_message("SA-2", sp_ids=("SP-2",)), b"garbage")
    assert await worker.poll(asyncio.Event(), 0) == 3
    assert reads == []
    assert by_request(await rig.acks()) == {"SR-SA-1-1": "SYNCHRONIZED",
                                            "SR-SA-2-1": "SYNCHRONIZED"}
    assert len(await rig.dead_letters()) == 1
    assert unpublished(10) == []
    await worker.stop()
