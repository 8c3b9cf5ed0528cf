"""Shared fixtures: real Apache Kafka and real PostgreSQL, resolved once per test session.

Broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else testcontainers when a Docker daemon answers;
else the project's launcher starts a genuine Apache Kafka (KRaft) from the Maven Central jars.
PostgreSQL: ``C2M_SYNC_TEST_POSTGRES_URL`` if set; else a throwaway cluster from Debian's
``postgresql`` package. With ``CI=true`` a broker or database that cannot be had fails the run
instead of skipping the tests that need it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(what: str, reason: str) -> None:
    """Fail under CI, skip elsewhere: a missing service is never a silent pass in CI."""
    message = f"{what} unavailable: {reason}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _docker_daemon_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


class BrokerHandle:
    """How tests reach the broker, and (for the launcher) how to stop and start it again."""

    def __init__(self, bootstrap_servers: str, origin: str, launcher: object | None = None):
        self.bootstrap_servers = bootstrap_servers
        self.origin = origin
        self.launcher = launcher

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap_servers}"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield BrokerHandle(configured, "KAFKA_BOOTSTRAP_SERVERS")
        return
    if _docker_daemon_answers():
        try:
            from testcontainers.kafka import KafkaContainer

            container = KafkaContainer("apache/kafka:3.9.1").with_kraft()
            container.start()
        except Exception as error:
            unavailable("Kafka (testcontainers)", str(error))
        try:
            yield BrokerHandle(container.get_bootstrap_server(), "testcontainers")
        finally:
            container.stop()
        return
    from sync.devtools.kafka import KafkaBroker, KafkaLauncherError

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), heap="768m")
    try:
        state = broker.start()
    except KafkaLauncherError as error:
        unavailable("Kafka (launcher)", str(error))
    try:
        yield BrokerHandle(state.bootstrap_servers, "launcher", broker)
    finally:
        broker.stop()
        broker.remove_data()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: BrokerHandle) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database for the whole session."""
    configured = os.environ.get("C2M_SYNC_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    from sync.devtools.postgres import PostgresLauncherError, ThrowawayPostgres

    try:
        cluster = ThrowawayPostgres()
        cluster.start()
    except PostgresLauncherError as error:
        unavailable("PostgreSQL", str(error))
    try:
        yield cluster.url
    finally:
        cluster.stop()


@contextlib.contextmanager
def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A fresh, empty database on ``server_url``'s server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server, dropped afterwards."""
    with _fresh_postgres_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Run a contract test once per supported database."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def postgres_or_sqlite_second_url(request: pytest.FixtureRequest, database_url: str,
                                  tmp_path: Path) -> Iterator[str]:
    """A second fresh database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    with _fresh_postgres_database(str(request.getfixturevalue("postgres_server_url"))) as url:
        yield url
