"""Kafka over SASL_SSL (SCRAM-SHA-512, TLS with the broker's own CA): a launcher broker that
accepts clients on nothing else, reached through the product's own settings and clients — topic
admin, the bus, the faust MDM worker, the CLI — and by librdkafka; a wrong password is refused
quickly with a clear error; and the password shows up in no log line and no command output."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from sync.api.operations import ReconcileIn
from sync.api.operations import _reconcile as api_reconcile
from sync.api.runs import Run
from sync.api.runtime import Runtime
from sync.clock import FixedClock
from sync.config.settings import KafkaSecurity, Settings, TopicNames
from sync.console.reconciliation import run_report as console_report
from sync.devtools.kafka import KafkaBroker, KafkaLauncherError
from sync.devtools.kafka_security import BrokerSecurity
from sync.mapping.codec import decode_acknowledgement, encode
from sync.mapping.messages import SyncMessage
from sync.reconcile.report import ReconcileReport
from sync.storage.mdm import MdmStore
from sync.transport.bus import BrokerUnavailableError, Message, bus_for, bus_of
from sync.transport.kafka import KafkaBus
from sync.transport.security import confluent_config
from sync.transport.topics import sync_topic_specs
from sync.worker.faust_app import build_app, run_faust_worker
from sync.worker.stats import Verdict, WorkerStats
from tests.conftest import unavailable
from tests.unit.mapping.builders import person_message, sa_message
from tests.unit.mdm.builders import default_admin

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLOCK = FixedClock(dt.date(2025, 3, 1))
# Distinctive enough that finding it anywhere in captured output can only be a leak.
PASSWORD = f"Pw-{uuid.uuid4().hex}"
WRONG_PASSWORD = f"Wrong-{uuid.uuid4().hex}"
SECRETS = (PASSWORD, WRONG_PASSWORD)


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """This module's own broker: clients only over SASL_SSL, one SCRAM-SHA-512 user."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-sasl-ssl"), heap="384m",
                         security=BrokerSecurity(username="c2m-sync-test", password=PASSWORD))
    try:
        broker.start()
    except KafkaLauncherError as error:
        unavailable("Kafka (launcher, SASL_SSL)", str(error))
    try:
        yield broker
    finally:
        broker.stop()
        broker.remove_data()


LOGGERS = ("sync", "aiokafka", "kafka", "faust", "mode")


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture,
                      capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Every test here runs with the clients logging at DEBUG, and fails when a password
    shows up in a log record (message or arguments) or on stdout/stderr."""
    previous = {name: logging.getLogger(name).level for name in LOGGERS}
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
    captured = capsys.readouterr()
    # In teardown ``caplog.records`` holds only teardown's records: ask for the test's own.
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    logged = "\n".join([captured.out, captured.err,
                        *(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
                          for record in records)])
    for secret in SECRETS:
        assert secret not in logged, "a password was logged or printed"


def settings_for(broker: KafkaBroker, tmp_path: Path, **security: object) -> Settings:
    state = broker.state()
    assert state is not None
    prefix = f"sec-{uuid.uuid4().hex[:8]}"
    values = broker.client_security().model_dump() | security
    return Settings(
        broker_url=f"kafka://{state.bootstrap_servers}",
        mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}", topic_partitions=2,
        topics=TopicNames(sync_requests=f"{prefix}.sync", acknowledgements=f"{prefix}.acks",
                          dead_letters=f"{prefix}.dlq"),
        kafka_security=KafkaSecurity.model_validate(values))


def keyed(message: SyncMessage) -> Message:
    return Message(message.key.encode(), encode(message))


async def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        await asyncio.sleep(0.2)


def test_broker_takes_clients_only_over_sasl_ssl(secured_broker: KafkaBroker) -> None:
    state = secured_broker.state()
    assert state is not None
    assert (state.security_protocol, state.ca_file) == ("SASL_SSL", str(secured_broker.ca_file))
    properties = (secured_broker.state_dir / "server.properties").read_text("utf-8")
    assert f"CLIENT://127.0.0.1:{state.port}" in properties
    assert "CLIENT:SASL_SSL" in properties
    # The password is in no file the launcher wrote, nor in the broker's log.
    for path in secured_broker.state_dir.rglob("*"):
        if path.is_file() and "data" not in path.relative_to(secured_broker.state_dir).parts:
            assert PASSWORD.encode() not in path.read_bytes(), path


async def test_topics_publish_and_consume_through_the_bus(secured_broker: KafkaBroker,
                                                          tmp_path: Path) -> None:
    settings = settings_for(secured_broker, tmp_path)
    bus = bus_for(settings.broker_url, settings.kafka_security)
    await bus.start()
    try:
        outcomes = await bus.create_topics(sync_topic_specs(settings))
        assert [o.status.value for o in outcomes] == ["created"] * 3
        described = await bus.describe_topics([settings.topics.sync_requests])
        assert (described[0].partitions, described[0].compacted) == (2, True)
        sent = await bus.publish_batch(settings.topics.acknowledgements,
                                       [Message(f"k{n}".encode(), f"v{n}".encode())
                                        for n in range(10)])
        consumer = await bus.consumer([settings.topics.acknowledgements], group_id="sec-test")
        try:
            received = []
            deadline = time.monotonic() + 30
            while len(received) < 10 and time.monotonic() < deadline:
                received += await consumer.getmany(timeout_ms=500)
            await consumer.commit()
        finally:
            await consumer.stop()
    finally:
        await bus.stop()
    assert sorted((r.key, r.value) for r in received) == sorted((r.key, r.value) for r in sent)


async def test_librdkafka_reads_with_the_same_settings(secured_broker: KafkaBroker,
                                                       tmp_path: Path) -> None:
    """confluent-kafka, configured from ``kafka_security`` by ``confluent_config``."""
    settings = settings_for(secured_broker, tmp_path)
    bus = KafkaBus(settings.kafka_bootstrap_servers, security=settings.kafka_security)
    await bus.start()
    try:
        await bus.create_topics(sync_topic_specs(settings))
        record = await bus.publish(settings.topics.dead_letters, b"key", b"value")
    finally:
        await bus.stop()
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "group.id": "interop-unused", "enable.auto.commit": False,
                         **confluent_config(settings.kafka_security)})
    try:
        consumer.assign([TopicPartition(settings.topics.dead_letters, record.partition,
                                        record.offset)])
        message = consumer.poll(30)
    finally:
        consumer.close()
    assert message is not None
    assert message.error() is None
    assert (message.key(), message.value()) == (b"key", b"value")


async def test_mdm_worker_applies_and_acknowledges_over_sasl_ssl(secured_broker: KafkaBroker,
                                                                 tmp_path: Path) -> None:
    """The faust engine consumes and the bus publishes the acknowledgements, both on
    SASL_SSL (faust's ``broker_credentials`` come from the same settings)."""
    settings = settings_for(secured_broker, tmp_path)
    bus = KafkaBus(settings.kafka_bootstrap_servers, security=settings.kafka_security)
    store = MdmStore(settings.mdm_db_url, default_admin())
    store.create_schema()
    await bus.start()
    try:
        await bus.create_topics(sync_topic_specs(settings))
        valid = [person_message("PER-1"), sa_message("SA-1"),
                 sa_message("SA-2", sp_ids=("SP-2",))]
        await bus.publish_batch(settings.topics.sync_requests, [keyed(m) for m in valid])
        stats = WorkerStats()
        stop = asyncio.Event()
        app = build_app(settings, store, CLOCK, bus, stats=stats,
                        app_id=f"mdm-sec-{uuid.uuid4().hex[:6]}", data_dir=tmp_path / "faust",
                        session_timeout_s=6.0)
        running = asyncio.create_task(run_faust_worker(app, stop))
        try:
            await wait_for(lambda: stats.counts[Verdict.APPLIED] >= 3 or running.done(), 90,
                           "the agent to apply 3 records")
            await wait_for(lambda: store.unpublished(10) == [], 30, "acknowledgements")
        finally:
            stop.set()
            await asyncio.wait_for(running, 60)
        consumer = await bus.consumer([settings.topics.acknowledgements])
        try:
            records = await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()
    finally:
        await bus.stop()
        store.dispose()
    assert stats.counts[Verdict.APPLIED] == 3
    assert {ack.sync_request_id: ack.outcome.value
            for ack in (decode_acknowledgement(r.value or b"") for r in records)} == {
        m.sync_request_id: "SYNCHRONIZED" for m in valid}
    assert store.get_us("SA-1") is not None


async def test_reconciliation_from_the_api_and_the_console_replays_over_sasl_ssl(
        secured_broker: KafkaBroker, tmp_path: Path) -> None:
    """The API's and the web console's reconciliations reach the broker with the settings'
    security, as every other entry point does (they once connected in plaintext)."""
    settings = settings_for(secured_broker, tmp_path).model_copy(
        update={"ccb_db_url": f"sqlite:///{tmp_path / 'ccb.db'}"})
    bus = bus_of(settings)
    await bus.start()
    try:
        await bus.create_topics(sync_topic_specs(settings))
        await bus.publish_batch(settings.topics.sync_requests, [keyed(sa_message("SA-9"))])
    finally:
        await bus.stop()
    runtime = Runtime(settings, default_admin())
    # Both replay on an event loop of their own, as they do from a request's worker thread.
    run: Run[ReconcileReport] = Run(id="RC-1", kind="reconciliation",
                                    started_at=runtime.clock.now())
    from_api = await asyncio.to_thread(api_reconcile, runtime, ReconcileIn(), run)
    assert run.total == run.done == 1  # its replay's progress, on the run
    from_console = await asyncio.to_thread(console_report, runtime)
    for report in (from_api, from_console):
        assert report.topic == settings.topics.sync_requests
        assert report.topic_expected == 1  # SA-9's message, read back over SASL_SSL
        assert report.mdm_held == report.ccb_expected == 0


async def test_wrong_password_is_refused_quickly_with_a_clear_error(
        secured_broker: KafkaBroker, tmp_path: Path) -> None:
    settings = settings_for(secured_broker, tmp_path, sasl_password=WRONG_PASSWORD)
    bus = bus_for(settings.broker_url, settings.kafka_security)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError) as refused:
        await bus.start()
    assert time.monotonic() - started < 20
    message = str(refused.value)
    assert "authentication failed" in message.lower()
    assert "user 'c2m-sync-test' with SCRAM-SHA-512" in message
    assert WRONG_PASSWORD not in message


async def test_debug_logs_of_every_client_are_captured_and_hold_no_password(
        secured_broker: KafkaBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What the clients log at DEBUG while creating topics (kafka-python logs its whole
    configuration), publishing, consuming and being refused a wrong password; the autouse
    fixture checks the same for every other test here, the faust worker's included."""
    settings = settings_for(secured_broker, tmp_path)
    bus = bus_for(settings.broker_url, settings.kafka_security)
    await bus.start()
    try:
        await bus.create_topics(sync_topic_specs(settings))
        await bus.publish(settings.topics.acknowledgements, b"k", b"v")
        consumer = await bus.consumer([settings.topics.acknowledgements])
        assert await consumer.getmany(timeout_ms=5000)
        await consumer.stop()
    finally:
        await bus.stop()
    wrong = settings_for(secured_broker, tmp_path, sasl_password=WRONG_PASSWORD)
    with pytest.raises(BrokerUnavailableError):
        await bus_for(wrong.broker_url, wrong.kafka_security).start()
    logging.getLogger("sync").debug("settings in effect: %r", settings)
    loggers = {record.name.split(".")[0] for record in caplog.records
               if record.levelno == logging.DEBUG}
    assert {"aiokafka", "kafka", "sync"} <= loggers
    assert "Starting KafkaAdminClient with configuration" in caplog.text
    assert "'sasl_plain_password': '**********'" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text


def test_cli_with_the_password_in_the_environment_prints_it_nowhere(
        secured_broker: KafkaBroker, tmp_path: Path) -> None:
    """``topics create``, ``topics describe`` and ``config show --json`` with the password in
    ``C2M_SYNC_KAFKA_SASL_PASSWORD``; then with a wrong one from a password file."""
    state = secured_broker.state()
    assert state is not None
    env = {**os.environ,
           "C2M_SYNC_BROKER_URL": f"kafka://{state.bootstrap_servers}",
           "C2M_SYNC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
           "C2M_SYNC_KAFKA_SASL_USERNAME": "c2m-sync-test",
           "C2M_SYNC_KAFKA_SASL_PASSWORD": PASSWORD,
           "C2M_SYNC_KAFKA_SSL_CAFILE": str(secured_broker.ca_file),
           "C2M_SYNC_TOPIC_SYNC_REQUESTS": f"cli-{uuid.uuid4().hex[:6]}.sync"}

    def cli(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sync", *args], env=environ, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120, check=False)

    runs = [cli("topics", "create", environ=env), cli("topics", "describe", environ=env),
            cli("config", "show", "--json", environ=env), cli("config", "show", environ=env)]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    assert env["C2M_SYNC_TOPIC_SYNC_REQUESTS"] in runs[1].stdout
    assert '"sasl_password": "**********"' in runs[2].stdout
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text(WRONG_PASSWORD + "\n")
    wrong_env = {key: value for key, value in env.items()
                 if key != "C2M_SYNC_KAFKA_SASL_PASSWORD"}
    wrong_env["C2M_SYNC_KAFKA_SASL_PASSWORD_FILE"] = str(secret_file)
    refused = cli("topics", "list", environ=wrong_env)
    assert refused.returncode != 0
    assert "authentication failed" in refused.stderr.lower()
    assert "Traceback" not in refused.stderr
    for run in [*runs, refused]:
        for secret in SECRETS:
            assert secret not in run.stdout + run.stderr
