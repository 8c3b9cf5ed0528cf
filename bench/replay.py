"""Replay benchmark: how fast ``reconcile``'s replay-and-rebuild reads the sync topic, against a
bare kafka-python consumer reading the same topic.

    python -m bench.replay                      # 1,000,000 messages
    python -m bench.replay --messages 200000    # a quick run

A fresh topic is filled with valid SA sync messages (``--keys`` SAs, each published in
successive versions; bulk, batched, not timed). Then, in the same run:

(a) a bare kafka-python ``KafkaConsumer`` (no group, partitions assigned, from the beginning)
    reads the whole topic and does nothing with the records;
(b) replay-and-rebuild: the bounded replay of ``sync.reconcile.replay`` (end offsets frozen at
    the start, a throwaway consumer over the Bus port) decoding every record and keeping the
    newest snapshot per key.

Both rates are messages per second; the target is (b) at least half of (a). The broker is
``KAFKA_BOOTSTRAP_SERVERS`` when set, else one started for the run from the project's launcher
(``sync.devtools.kafka``) and stopped at the end. Results go to ``bench/results/replay.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from sync.mapping.codec import decode_sync_message, encode
from sync.mapping.messages import (
    AccountAttributes,
    MeasuringComponentSnapshot,
    SaSyncMessage,
    ServicePointSnapshot,
    SpLinkSnapshot,
)
from sync.reconcile.replay import rebuild_latest
from sync.transport.bus import TopicSpec
from sync.transport.kafka import KafkaBus

RESULTS = Path(__file__).parent / "results" / "replay.json"
TARGET_RATIO = 0.5


@dataclass
class Rate:
    what: str
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


# --- the broker and the topic ------------------------------------------------------------------


@contextmanager
def broker() -> Iterator[str]:
    """Bootstrap servers: ``KAFKA_BOOTSTRAP_SERVERS``, else a launcher broker for the run."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    from sync.devtools.kafka import KafkaBroker

    with tempfile.TemporaryDirectory(prefix="c2m-bench-kafka-") as folder:
        launched = KafkaBroker(Path(folder), heap="1g")
        state = launched.start()
        try:
            yield state.bootstrap_servers
        finally:
            launched.stop()
            launched.remove_data()


def template(sa_number: int) -> dict[str, Any]:
    """The wire document of one residential electric SA (version 1)."""
    sa_id, sp_id = f"SA-{sa_number:08d}", f"SP-{sa_number:08d}"
    message = SaSyncMessage(
        external_id=sa_id, version=1, sync_request_id="SR-0", event_time="2025-03-03T12:00:00Z",
        sa_type="E-RES", us_type="E-RES-US", sa_status="20", start_date="2025-03-01",
        time_zone="America/Chicago", external_account_id=f"A-{sa_number:08d}",
        account=AccountAttributes(account_id=f"A-{sa_number:08d}", customer_class="RES",
                                  bill_cycle="BC01", division="MAIN"),
        division="MAIN", main_contact=f"P-{sa_number:08d}", premise_id=f"PR-{sa_number:08d}",
        sp_links=(SpLinkSnapshot(sp_id=sp_id, start_date="2025-03-01", start_read=1200.5),),
        service_points=(ServicePointSnapshot(
            sp_id=sp_id, sp_type="E-RES", premise_id=f"PR-{sa_number:08d}",
            meter_id=f"M-{sa_number:08d}", version=1,
            measuring_components=(MeasuringComponentSnapshot(mc_id=f"MC-{sa_number:08d}",
                                                             mc_class="kWh"),)),))
    document: dict[str, Any] = json.loads(encode(message))
    return document


def messages(count: int, keys: int) -> Iterator[tuple[bytes, bytes]]:
    """``count`` valid sync messages over ``keys`` SAs: SA n's k-th message is version k."""
    base = template(0)
    for index in range(count):
        sa_number, version = index % keys, index // keys + 1
        document = dict(base)
        document["externalId"] = f"SA-{sa_number:08d}"
        document["externalAccountId"] = f"A-{sa_number:08d}"
        document["version"] = version
        document["syncRequestId"] = f"SR-{index}"
        yield (f"SA:SA-{sa_number:08d}".encode(),
               json.dumps(document, separators=(",", ":")).encode())


def produce(bootstrap: str, topic: str, count: int, keys: int, partitions: int) -> float:
    sample = next(messages(1, keys))[1]
    decode_sync_message(sample)  # the bench measures valid messages only
    return asyncio.run(_produce(bootstrap, topic, count, keys, partitions))


async def _produce(bootstrap: str, topic: str, count: int, keys: int, partitions: int) -> float:
    bus = KafkaBus(bootstrap)
    await bus.start()
    try:
        # Not compacted: the log cleaner must not change the topic between the two readings.
        await bus.create_topics([TopicSpec(topic, partitions)])
    finally:
        await bus.stop()
    # aiokafka computes record checksums in C; kafka-python's producer does it in Python.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=50,
                                max_batch_size=1 << 20, max_request_size=8 << 20)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in messages(count, keys):
            pending.append(await producer.send(topic, key=key, value=value))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


# --- the two readings --------------------------------------------------------------------------


def bare_consumer(bootstrap: str, topic: str) -> Rate:
    # kafka-python at its fastest: without the optional crc32c C package it checks record
    # checksums in pure Python (several times slower), so the check is off; large fetches.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             check_crcs=False, fetch_max_bytes=64 << 20,
                             max_partition_fetch_bytes=16 << 20)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.seek_to_beginning(*partitions)
        started = time.perf_counter()
        read = 0
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for tp, records in consumer.poll(timeout_ms=500, max_records=5000).items():
                read += len(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return Rate("bare kafka-python consumer", read, time.perf_counter() - started)
    finally:
        consumer.close()


def replay_and_rebuild(bootstrap: str, topic: str) -> tuple[Rate, int]:
    async def run() -> tuple[Rate, int]:
        bus = KafkaBus(bootstrap)
        await bus.start()
        try:
            started = time.perf_counter()
            _, latest = await rebuild_latest(bus, topic)
            seconds = time.perf_counter() - started
        finally:
            await bus.stop()
        if latest.problems:
            raise SystemExit(f"replay found {len(latest.problems)} unreadable records: "
                             f"{latest.problems[0].reason}")
        return Rate("replay and rebuild (reconcile)", latest.records, seconds), len(
            latest.messages)

    return asyncio.run(run())


# --- the run -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=None,
                        help="distinct SAs (default: a fifth of the messages)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1,
                        help="read the topic this many times each way; the best run counts")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    keys = args.keys or max(1, args.messages // 5)
    console = Console()
    with broker() as bootstrap:
        topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
        console.print(f"producing {args.messages:,} messages over {keys:,} keys to {topic} "
                      f"on {bootstrap} ...")
        produced = produce(bootstrap, topic, args.messages, keys, args.partitions)
        console.print(f"produced in {produced:.1f} s")
        bare: Rate | None = None
        replay: Rate | None = None
        rebuilt_keys = 0
        for _ in range(args.repeat):
            first = bare_consumer(bootstrap, topic)
            second, rebuilt_keys = replay_and_rebuild(bootstrap, topic)
            bare = first if bare is None or first.per_second > bare.per_second else bare
            replay = second if replay is None or second.per_second > replay.per_second \
                else replay
    assert bare is not None
    assert replay is not None
    if bare.messages != args.messages or replay.messages != args.messages:
        raise SystemExit(f"expected {args.messages} records, read {bare.messages} (bare) and "
                         f"{replay.messages} (replay)")
    if rebuilt_keys != keys:
        raise SystemExit(f"rebuilt {rebuilt_keys} keys, expected {keys}")
    ratio = replay.per_second / bare.per_second if bare.per_second else 0.0

    table = Table(title=f"Replay of {args.messages:,} sync messages ({keys:,} keys, "
                        f"{args.partitions} partitions)", title_justify="left")
    for column in ("reader", "messages", "seconds", "messages/s"):
        table.add_column(column, justify="left" if column == "reader" else "right")
    for rate in (bare, replay):
        table.add_row(rate.what, f"{rate.messages:,}", f"{rate.seconds:.2f}",
                      f"{rate.per_second:,.0f}")
    console.print(table)
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    console.print(f"replay-and-rebuild / bare consumer = {ratio:.2f} "
                  f"(target >= {TARGET_RATIO:.2f}: {verdict})")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "replay", "messages": args.messages, "keys": keys,
        "partitions": args.partitions, "produce_seconds": round(produced, 2),
        "bare_consumer": {**asdict(bare), "per_second": round(bare.per_second)},
        "replay_and_rebuild": {**asdict(replay), "per_second": round(replay.per_second)},
        "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO, "target_met": ratio >= TARGET_RATIO,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }, indent=2) + "\n", encoding="utf-8")
    console.print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
