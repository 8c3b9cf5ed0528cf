"""Run a genuine Apache Kafka broker (KRaft, single node) from the Maven Central jars.

The broker jars (``org.apache.kafka:kafka_2.13``) and their runtime dependencies are resolved once
with Maven into a cache directory; later starts reuse them and take a few seconds. The broker runs
as combined broker+controller on free loopback ports, in its own process group, so that it
outlives the command that started it; its state file (``broker.json``) lets another process find,
query and stop it.

With ``security=BrokerSecurity(...)`` clients reach the broker over SASL_SSL only
(``sync.devtools.kafka_security``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sync.config.settings import KafkaSecurity
from sync.devtools.kafka_security import (
    BrokerSecurity,
    CertificateError,
    make_broker_certificates,
)

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
# Kafka 3.9 logs through slf4j 1.7; reload4j is the binding its own distribution ships.
SLF4J_BINDING = ("org.slf4j", "slf4j-reload4j", "1.7.36")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>c2m-sync</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>{binding[0]}</groupId>
      <artifactId>{binding[1]}</artifactId>
      <version>{binding[2]}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.logger.kafka=WARN
log4j.logger.org.apache.kafka=WARN
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


class KafkaLauncherError(RuntimeError):
    """The broker could not be resolved, formatted, started or stopped."""


def default_cache_dir() -> Path:
    configured = os.environ.get("C2M_SYNC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "c2m-sync"


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the broker binds: a port whose old connections linger in TIME_WAIT after a stop
        # is free for it, so a broker restarted at once keeps its address.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise KafkaLauncherError("no 'java' found: install a JDK 17+ or set JAVA_HOME")
    return found


def resolve_broker_jars(cache_dir: Path | None = None, kafka_version: str = KAFKA_VERSION) -> Path:
    """Return the folder holding the broker's jars, resolving them with Maven when missing."""
    root = (cache_dir or default_cache_dir()) / "kafka" / f"{SCALA_VERSION}-{kafka_version}"
    libs = root / "libs"
    marker = libs / ".resolved"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise KafkaLauncherError("Maven ('mvn') is needed once to fetch the Kafka broker jars")
    root.mkdir(parents=True, exist_ok=True)
    (root / "pom.xml").write_text(
        _POM.format(kafka=kafka_version, scala=SCALA_VERSION, binding=SLF4J_BINDING), "utf-8"
    )
    staging = root / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn, "-B", "-q", "-f", str(root / "pom.xml"), "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not any(staging.glob(f"kafka_{SCALA_VERSION}-*.jar")):
        raise KafkaLauncherError(
            "Maven could not resolve org.apache.kafka:kafka_"
            f"{SCALA_VERSION}:{kafka_version}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(kafka_version, "utf-8")
    return libs


@dataclass
class BrokerState:
    pid: int
    port: int
    controller_port: int
    cluster_id: str
    kafka_version: str
    log_file: str
    # What clients must speak on ``port``; the CA they must trust for SASL_SSL.
    security_protocol: str = "PLAINTEXT"
    ca_file: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"


def _cluster_id() -> str:
    """Kafka's Uuid text form: URL-safe base64 of 16 random bytes without padding, drawn again
    when it starts with "-" as Kafka's own ``Uuid.randomUuid`` does: the storage tool would
    take such an id for an option and refuse to format (one start in 64)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); look at its state where /proc exists.
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("State:"):
                    return "Z" not in line.split(":", 1)[1]
    return True


class KafkaBroker:
    """One single-node KRaft broker whose data and state live in ``state_dir``."""

    def __init__(
        self,
        state_dir: Path,
        *,
        cache_dir: Path | None = None,
        kafka_version: str = KAFKA_VERSION,
        heap: str = "512m",
        extra_properties: Mapping[str, str] | None = None,
        listener_security_protocol: str = "PLAINTEXT",
        jvm_options: tuple[str, ...] = (),
        security: BrokerSecurity | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.cache_dir = cache_dir
        self.kafka_version = kafka_version
        self.heap = heap
        self.extra_properties = dict(extra_properties or {})
        self.listener_security_protocol = listener_security_protocol
        self.jvm_options = jvm_options
        self.security = security
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients of a secured broker trust."""
        return self.state_dir / "tls" / "ca.pem"

    def client_security(self) -> KafkaSecurity:
        """The ``kafka_security`` settings that reach this broker (plaintext when unsecured)."""
        if self.security is None:
            return KafkaSecurity()
        return self.security.client_security(self.ca_file)

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "broker.json"

    def state(self) -> BrokerState | None:
        """The running broker's state, or None when none runs from this folder."""
        if not self._state_file.exists():
            return None
        state = BrokerState(**json.loads(self._state_file.read_text("utf-8")))
        if not _process_alive(state.pid):
            self._state_file.unlink(missing_ok=True)
            return None
        return state

    def _server_properties(self, port: int, controller_port: int,
                           internal_port: int | None = None) -> str:
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"EXTERNAL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"EXTERNAL://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "EXTERNAL",
            "listener.security.protocol.map":
                f"EXTERNAL:{self.listener_security_protocol},CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.state_dir / "data"),
            "num.partitions": "3",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.cleaner.backoff.ms": "1000",
            "log.flush.interval.messages": "9223372036854775807",
        }
        if self.security is not None and internal_port is not None:
            properties.update(self.security.listener_properties(
                self.state_dir / "tls" / "broker-keystore.pem", port, controller_port,
                internal_port))
        properties.update(self.extra_properties)
        return "".join(f"{key}={value}\n" for key, value in properties.items())

    def _ports(self) -> tuple[int, int, int | None]:
        """Client port, controller port and (secured broker) internal port: the previous
        run's when still free, so clients configured with them keep working."""
        names = ("port", "controller_port", *(("internal_port",) if self.security else ()))
        previous = self.state_dir / "ports.json"
        if previous.exists():
            ports = json.loads(previous.read_text("utf-8"))
            if all(name in ports and _port_is_free(ports[name]) for name in names):
                found = [int(ports[name]) for name in names]
                return found[0], found[1], found[2] if len(found) > 2 else None
        chosen: list[int] = []
        while len(chosen) < len(names):
            candidate = free_loopback_port()
            if candidate not in chosen:
                chosen.append(candidate)
        previous.write_text(json.dumps(dict(zip(names, chosen, strict=True))))
        return chosen[0], chosen[1], chosen[2] if len(chosen) > 2 else None

    def start(self, timeout: float = 120.0) -> BrokerState:
        """Start the broker (or return the one already running) and wait until it serves
        metadata requests."""
        running = self.state()
        if running is not None:
            return running
        libs = resolve_broker_jars(self.cache_dir, self.kafka_version)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        port, controller_port, internal_port = self._ports()
        if self.security is not None:
            try:
                make_broker_certificates(self.state_dir / "tls")
            except CertificateError as error:
                raise KafkaLauncherError(str(error)) from None
        properties_file = self.state_dir / "server.properties"
        properties_file.write_text(
            self._server_properties(port, controller_port, internal_port), "utf-8")
        log4j_file = self.state_dir / "log4j.properties"
        log4j_file.write_text(_LOG4J, "utf-8")
        classpath = f"{libs}/*"
        java = _java()
        base = [java, f"-Dlog4j.configuration=file:{log4j_file}", "-cp", classpath]
        cluster_file = self.state_dir / "cluster-id"
        if not (self.state_dir / "data" / "meta.properties").exists():
            cluster_id = _cluster_id()
            scram = [] if self.security is None else self.security.format_arguments()
            formatted = subprocess.run(
                [*base, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                 "-c", str(properties_file), "--ignore-formatted", *scram],
                capture_output=True, text=True, check=False,
            )
            if formatted.returncode != 0:
                raise KafkaLauncherError("formatting KRaft storage failed:\n"
                                         f"{self._redacted(formatted.stderr)}")
            cluster_file.write_text(cluster_id, "utf-8")
        cluster_id = cluster_file.read_text("utf-8").strip()
        log_file = self.state_dir / "kafka.log"
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                 "-Djava.awt.headless=true", *self.jvm_options,
                 f"-Dlog4j.configuration=file:{log4j_file}", "-cp", classpath,
                 "kafka.Kafka", str(properties_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._process = process
        state = BrokerState(process.pid, port, controller_port, cluster_id,
                            self.kafka_version, str(log_file))
        if self.security is not None:
            state.security_protocol, state.ca_file = "SASL_SSL", str(self.ca_file)
        self._state_file.write_text(json.dumps(asdict(state)), "utf-8")
        try:
            self._wait_until_ready(state, timeout)
        except BaseException:
            self.stop()
            raise
        return state

    def _wait_until_ready(self, state: BrokerState, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if not _process_alive(state.pid):
                raise KafkaLauncherError(
                    f"the broker exited during start-up; last log lines:\n{self._log_tail(state)}"
                )
            try:
                if metadata_ready(state.bootstrap_servers, security=self.client_security()):
                    return
            except Exception as error:  # any client error means: not ready yet
                last_error = self._redacted(f"{type(error).__name__}: {error}")
            time.sleep(0.5)
        raise KafkaLauncherError(
            f"the broker did not answer a metadata request within {timeout:.0f}s "
            f"({last_error}); last log lines:\n{self._log_tail(state)}"
        )

    def _redacted(self, text: str) -> str:
        """``text`` without the SCRAM password (tool output may echo its arguments)."""
        if self.security is None:
            return text
        return text.replace(self.security.password, "***")

    @staticmethod
    def _log_tail(state: BrokerState, lines: int = 30) -> str:
        path = Path(state.log_file)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text("utf-8", errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``); True if one ran."""
        state = self.state()
        if state is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _process_alive(state.pid):
            self._reap()
            time.sleep(0.2)
        if _process_alive(state.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state.pid, signal.SIGKILL)
        self._reap(block=True)
        self._state_file.unlink(missing_ok=True)
        return True

    def _reap(self, block: bool = False) -> None:
        if self._process is not None:
            if block:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=10)
            else:
                self._process.poll()

    def remove_data(self) -> None:
        """Delete the broker's data and state (it must be stopped)."""
        if self.state() is not None:
            raise KafkaLauncherError("stop the broker before removing its data")
        shutil.rmtree(self.state_dir, ignore_errors=True)


def metadata_ready(bootstrap_servers: str, timeout_ms: int = 5000,
                   security: KafkaSecurity | None = None) -> bool:
    """True when the broker answers a metadata request listing itself."""
    from kafka import KafkaAdminClient

    from sync.transport.security import kafka_python_options

    options: dict[str, Any] = kafka_python_options(security or KafkaSecurity())
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms, **options,
    )
    try:
        cluster = admin.describe_cluster()
        return bool(cluster.get("brokers"))
    finally:
        admin.close()

