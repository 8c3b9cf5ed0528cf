"""``kafka_security`` as each client library takes it (aiokafka, kafka-python, faust,
librdkafka), the TLS context against a real TLS handshake on loopback, and the bus handing the
options to every client it makes."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from pathlib import Path
from typing import Any, ClassVar

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from sync.config.settings import KafkaSecurity
from sync.devtools.kafka_security import make_broker_certificates
from sync.transport.bus import BrokerRefusedError, bus_for
from sync.transport.kafka import KafkaBus, RetryPolicy
from sync.transport.security import (
    KafkaSecurityError,
    MaskedSecret,
    aiokafka_options,
    confluent_config,
    connection_refusal,
    faust_credentials,
    kafka_python_options,
    ssl_context,
)

PASSWORD = "s3cr3t-Passw0rd-for-tests"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(CA certificate, PEM keystore of a server certificate for localhost/127.0.0.1)."""
    return make_broker_certificates(tmp_path_factory.mktemp("tls"))


def security(protocol: str, ca_file: Path | None = None, **extra: Any) -> KafkaSecurity:
    values: dict[str, Any] = {"security_protocol": protocol, **extra}
    if protocol.startswith("SASL_"):
        values |= {"sasl_username": "c2m-sync", "sasl_password": PASSWORD}
    if ca_file is not None:
        values["ssl_cafile"] = ca_file
    return KafkaSecurity.model_validate(values)


def test_plaintext_adds_only_the_protocol() -> None:
    plain = KafkaSecurity()
    assert aiokafka_options(plain) == {"security_protocol": "PLAINTEXT"}
    assert kafka_python_options(plain) == {"security_protocol": "PLAINTEXT"}
    assert confluent_config(plain) == {"security.protocol": "PLAINTEXT"}
    assert faust_credentials(plain) is None
    assert ssl_context(plain) is None


def test_sasl_ssl_options_carry_credentials_and_a_verifying_tls_context(
        certificates: tuple[Path, Path]) -> None:
    ca_file, _ = certificates
    options = aiokafka_options(security("SASL_SSL", ca_file))
    context = options.pop("ssl_context")
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "c2m-sync", "sasl_plain_password": PASSWORD}
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [cert["subject"] for cert in context.get_ca_certs()] == [
        ((("commonName", "c2m-sync throwaway CA"),),)]


def test_sasl_plaintext_has_no_tls_context() -> None:
    options = aiokafka_options(security("SASL_PLAINTEXT", sasl_mechanism="PLAIN"))
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                       "sasl_plain_username": "c2m-sync", "sasl_plain_password": PASSWORD}


def test_password_value_is_kept_but_its_repr_is_masked() -> None:
    password = kafka_python_options(security("SASL_PLAINTEXT"))["sasl_plain_password"]
    assert isinstance(password, MaskedSecret)
    assert password == PASSWORD
    assert password.encode() == PASSWORD.encode()  # what SCRAM hashes
    # kafka-python logs its configuration dict with "%s" at DEBUG
    logged = str({"sasl_plain_password": password})
    assert PASSWORD not in logged
    assert "'**********'" in logged


def test_faust_credentials_match_the_bus_clients(certificates: tuple[Path, Path]) -> None:
    """faust turns its credentials into aiokafka arguments: they must equal ours."""
    ca_file, _ = certificates
    for protocol in ("SASL_SSL", "SASL_PLAINTEXT", "SSL"):
        configured = security(protocol, ca_file if protocol.endswith("SSL") else None)
        credentials = faust_credentials(configured)
        faust_options = dict(credentials_to_aiokafka_auth(credentials))
        ours = aiokafka_options(configured)
        assert {k: v for k, v in faust_options.items() if v is not None and k != "ssl_context"} \
            == {k: v for k, v in ours.items() if k != "ssl_context"}
        assert ("ssl_context" in ours) is (faust_options.get("ssl_context") is not None)
        assert PASSWORD not in repr(credentials)
    assert isinstance(faust_credentials(security("SASL_SSL", ca_file)), faust.SASLCredentials)
    assert isinstance(faust_credentials(security("SSL", ca_file)), faust.SSLCredentials)


def test_confluent_config_is_librdkafkas_dotted_names(certificates: tuple[Path, Path]) -> None:
    ca_file, keystore = certificates
    config = confluent_config(security(
        "SASL_SSL", ca_file, ssl_certfile=keystore, ssl_keyfile=keystore,
        ssl_key_password="key-pass", ssl_check_hostname=False))
    assert config == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "c2m-sync", "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca_file), "ssl.certificate.location": str(keystore),
        "ssl.key.location": str(keystore), "ssl.key.password": "key-pass",
        "ssl.endpoint.identification.algorithm": "none"}
    assert type(config["sasl.password"]) is str  # a plain string for the C library


async def handshake(server_keystore: Path, client: ssl.SSLContext, server_hostname: str) -> None:
    """A TLS handshake with a loopback server presenting ``server_keystore``."""
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(server_keystore)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=server_hostname), 10)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_context_trusts_the_broker_certificate_by_name_and_address(
        certificates: tuple[Path, Path]) -> None:
    ca_file, keystore = certificates
    context = ssl_context(security("SSL", ca_file))
    assert context is not None
    await handshake(keystore, context, "localhost")
    await handshake(keystore, context, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await handshake(keystore, context, "kafka.example.com")
    unchecked = ssl_context(security("SSL", ca_file, ssl_check_hostname=False))
    assert unchecked is not None
    await handshake(keystore, unchecked, "kafka.example.com")


async def test_tls_context_without_the_ca_refuses_the_broker(
        certificates: tuple[Path, Path]) -> None:
    """The system CAs do not know the throwaway CA: verification is on by default."""
    _, keystore = certificates
    context = ssl_context(security("SSL"))
    assert context is not None
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await handshake(keystore, context, "localhost")


def test_unloadable_tls_files_are_named_in_the_error(tmp_path: Path,
                                                     certificates: tuple[Path, Path]) -> None:
    not_a_certificate = tmp_path / "ca.pem"
    not_a_certificate.write_text("hello\n")
    with pytest.raises(KafkaSecurityError, match=re.escape(
            f"cannot load the Kafka TLS files ({not_a_certificate})")):
        ssl_context(security("SSL", not_a_certificate))
    ca_file, _ = certificates
    with pytest.raises(KafkaSecurityError, match=re.escape(str(ca_file))):
        # the CA file holds no private key: not a usable client certificate
        ssl_context(security("SSL", ca_file, ssl_certfile=ca_file, ssl_keyfile=ca_file))


class RecordingProducer:
    """Stands in for aiokafka's producer: records its arguments, starts without a broker."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        RecordingProducer.made.append(options)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def test_bus_hands_the_security_options_to_its_producer(
        certificates: tuple[Path, Path]) -> None:
    RecordingProducer.made.clear()
    configured = security("SASL_SSL", certificates[0])
    bus = KafkaBus("broker-1:9093", security=configured, producer_factory=RecordingProducer)
    await bus.start()
    await bus.stop()
    [options] = RecordingProducer.made
    assert options["bootstrap_servers"] == "broker-1:9093"
    assert (options["security_protocol"], options["sasl_mechanism"],
            options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "c2m-sync", PASSWORD)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert (options["enable_idempotence"], options["acks"]) == (True, "all")


def test_bus_for_passes_the_security_to_the_kafka_bus_and_its_admin() -> None:
    configured = security("SASL_PLAINTEXT")
    bus = bus_for("kafka://broker-1:9093", configured)
    assert isinstance(bus, KafkaBus)
    assert bus.security is configured
    assert bus._admin.security is configured
    assert isinstance(bus_for("kafka://broker-1:9093"), KafkaBus)
    assert bus_for("kafka://broker-1:9093").security == KafkaSecurity()  # type: ignore[attr-defined]


async def test_unreachable_broker_is_not_mistaken_for_a_refusal() -> None:
    """Nothing listens: no reason to give beyond "cannot connect" (the caller's own error)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        assert await connection_refusal(f"127.0.0.1:{port}", security("SASL_PLAINTEXT"),
                                        timeout_s=2) is None


async def test_tls_failure_is_reported_as_a_refusal_naming_the_ca(
        certificates: tuple[Path, Path], tmp_path: Path) -> None:
    """A broker whose certificate the client does not trust: the bus says so at start."""
    _, keystore = certificates
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(keystore)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    try:
        bus = KafkaBus(f"127.0.0.1:{port}", security=security("SSL"),
                       retry=RetryPolicy(attempts=1))
        with pytest.raises(BrokerRefusedError) as refused:
            await bus.start()
    finally:
        server.close()
        await server.wait_closed()
    assert "TLS handshake with 127.0.0.1:" in str(refused.value)
    assert "certificate verify failed" in str(refused.value).lower() \
        or "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    assert "trusted CA: system default" in str(refused.value)
