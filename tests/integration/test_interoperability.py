"""Interoperability: a Kafka client that is not the project's own — confluent-kafka, on
librdkafka — reads the sync topic the relay wrote, and every message validates against the JSON
Schema files exported to ``schemas/`` (the contract other teams build on)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jsonschema
import pytest
from confluent_kafka import Consumer, TopicPartition

from sync.ccb.commands import RequestStop
from sync.config.admin import load_admin_config
from tests.integration.pipeline_support import loaded_pipeline, pipeline_settings, run

ROOT = Path(__file__).parents[2]
ADMIN = load_admin_config()
SCHEMA_FILES = {"SA": "sa-sync.v1.json", "PERSON": "person-sync.v1.json",
                "SA_RELATIONSHIP": "sa-relationship-sync.v1.json"}


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((ROOT / "schemas" / name).read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def read_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes, bytes]]:
    """Every record of ``topic`` from the beginning, read by librdkafka without a group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-unused",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        records: list[tuple[bytes, bytes]] = []
        done = {p for p, end in ends.items() if end == 0}
        for _ in range(2000):  # bounded: each poll waits at most 0.5 s
            if len(done) == partitions:
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == -191:  # _PARTITION_EOF
                    done.add(message.partition())
                    continue
                raise AssertionError(f"librdkafka error: {message.error()}")
            records.append((message.key(), message.value()))
            if message.offset() + 1 >= ends[message.partition()]:
                done.add(message.partition())
        assert len(done) == partitions, "did not reach the end of every partition"
        return records
    finally:
        consumer.close()


@pytest.mark.timeout(300)
async def test_librdkafka_reads_the_sync_topic_and_every_message_matches_the_schema(
        kafka_broker: object, tmp_path: Path) -> None:
    bootstrap = str(getattr(kafka_broker, "bootstrap_servers"))  # noqa: B009
    settings = pipeline_settings(f"kafka://{bootstrap}", tmp_path, "interop")
    pipeline = await loaded_pipeline(settings)
    try:
        run(pipeline, RequestStop(account_id="A-TN-01", sa_ids=("SA-TN01-E",),
                                  stop_date=dt.date(2025, 3, 14)))
        report = await pipeline.settle()
    finally:
        await pipeline.stop()

    records = read_all(bootstrap, settings.topics.sync_requests, 3)
    assert len(records) == report.published
    validators = {entity: validator(name) for entity, name in SCHEMA_FILES.items()}
    seen = set()
    for key, value in records:
        document = json.loads(value)
        entity_type = document["entityType"]
        validators[entity_type].validate(document)
        assert key.decode("utf-8") == f"{entity_type}:{document['externalId']}"
        seen.add(entity_type)
    assert seen == {"SA", "PERSON"}
