"""The launcher's SASL_SSL option, without starting a broker: listeners, ports, the SCRAM user's
constraints, and the password kept out of repr and error text. (A started SASL_SSL broker is
``tests/integration/test_kafka_sasl_ssl.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.devtools.kafka import KafkaBroker
from sync.devtools.kafka_security import BrokerSecurity


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_plain_broker_keeps_its_single_plaintext_listener(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path)
    found = properties(broker._server_properties(9092, 9093))
    assert found["listeners"] == "EXTERNAL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert found["listener.security.protocol.map"] == "EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert found["inter.broker.listener.name"] == "EXTERNAL"
    assert not any(key.startswith(("sasl.", "listener.name.")) for key in found)
    assert broker.client_security().security_protocol == "PLAINTEXT"


def test_secured_broker_takes_clients_over_sasl_ssl_only(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, security=BrokerSecurity(password="pw-123"))
    found = properties(broker._server_properties(9092, 9093, 9094))
    assert found["listeners"] == ("CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9094,"
                                  "CONTROLLER://127.0.0.1:9093")
    assert found["advertised.listeners"] == "CLIENT://127.0.0.1:9092,INTERNAL://127.0.0.1:9094"
    assert found["listener.security.protocol.map"] == (
        "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT")
    assert found["inter.broker.listener.name"] == "INTERNAL"
    assert found["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert found["listener.name.client.ssl.keystore.type"] == "PEM"
    assert found["listener.name.client.ssl.keystore.location"] == str(
        tmp_path / "tls" / "broker-keystore.pem")
    assert "pw-123" not in broker._server_properties(9092, 9093, 9094)


def test_secured_broker_reuses_three_distinct_ports(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, security=BrokerSecurity())
    port, controller_port, internal_port = broker._ports()
    assert internal_port is not None
    assert len({port, controller_port, internal_port}) == 3
    assert broker._ports() == (port, controller_port, internal_port)
    # The plain broker in the same folder only needs the first two.
    assert KafkaBroker(tmp_path)._ports() == (port, controller_port, None)


def test_client_security_trusts_the_broker_ca(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, security=BrokerSecurity(username="ops", password="pw-123"))
    broker.ca_file.parent.mkdir()
    broker.ca_file.write_text("CA")
    client = broker.client_security()
    assert (client.security_protocol, client.sasl_mechanism, client.sasl_username) == (
        "SASL_SSL", "SCRAM-SHA-512", "ops")
    assert client.sasl_password is not None
    assert client.sasl_password.get_secret_value() == "pw-123"
    assert client.ssl_cafile == broker.ca_file


def test_broker_password_is_random_and_not_in_repr() -> None:
    first, second = BrokerSecurity(), BrokerSecurity()
    assert first.password != second.password
    assert len(first.password) == 32
    assert first.password not in repr(first)
    assert "username='c2m-sync'" in repr(first)


@pytest.mark.parametrize("password", ["a,b", "a]b", "a[b", 'a"b', "a=b", "a\nb", ""])
def test_scram_values_that_break_kafkas_syntax_are_refused(password: str) -> None:
    with pytest.raises(ValueError, match="broker SCRAM password must be non-empty"):
        BrokerSecurity(password=password)


def test_tool_output_is_redacted(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, security=BrokerSecurity(password="pw-123"))
    assert broker._redacted("bad value [name=x,password=pw-123]") == (
        "bad value [name=x,password=***]")
    assert KafkaBroker(tmp_path)._redacted("pw-123") == "pw-123"
