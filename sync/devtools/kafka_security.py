"""The launcher's secured broker: a SASL_SSL listener for clients with one SCRAM-SHA-512 user
and a certificate from a throwaway CA (made with ``openssl``, which every development machine
has; Kafka 3.9 reads PEM keystores directly, so no ``keytool`` step).

The SCRAM user is created when the KRaft storage is formatted (``--add-scram``): that is how a
KRaft cluster gets its first credentials, before any client could create them. The controller
and inter-broker listeners stay PLAINTEXT on loopback ports of their own: only clients
authenticate, which is what the product's tests need to exercise.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sync.config.settings import KafkaSecurity

SCRAM_MECHANISM = "SCRAM-SHA-512"
# Kafka's --add-scram syntax ends a value at ',' or ']' and quotes with '"'.
_SCRAM_SYNTAX = ',]["=\n'


class CertificateError(RuntimeError):
    """``openssl`` is missing or could not make the broker's certificate."""


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL client listener with one SCRAM-SHA-512 user. The default password is random;
    it is kept out of ``repr`` so it cannot end up in a log or a test report."""

    username: str = "c2m-sync"
    password: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)

    def __post_init__(self) -> None:
        for name, value in (("username", self.username), ("password", self.password)):
            if not value or any(char in value for char in _SCRAM_SYNTAX):
                raise ValueError(f"broker SCRAM {name} must be non-empty without "
                                 "',', ']', '[', '\"', '=' or line breaks")

    def client_security(self, ca_file: Path) -> KafkaSecurity:
        """The ``kafka_security`` settings a client of this broker needs."""
        return KafkaSecurity.model_validate({
            "security_protocol": "SASL_SSL", "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_username": self.username, "sasl_password": self.password,
            "ssl_cafile": ca_file})

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments creating the SCRAM user."""
        return ["--add-scram",
                f"{SCRAM_MECHANISM}=[name={self.username},password={self.password}]"]

    def listener_properties(self, keystore: Path, port: int, controller_port: int,
                            internal_port: int) -> dict[str, str]:
        """Broker properties: SASL_SSL for clients on ``port``, the broker's own traffic on
        PLAINTEXT loopback ports. No password among them."""
        client = "listener.name.client"
        return {
            "listeners": f"CLIENT://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal_port},"
                         f"CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{port},"
                                    f"INTERNAL://127.0.0.1:{internal_port}",
            "inter.broker.listener.name": "INTERNAL",
            "listener.security.protocol.map":
                "CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{client}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
            # No credentials here: the broker only verifies SCRAM logins, against the
            # credentials stored in the cluster metadata.
            f"{client}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{client}.ssl.keystore.type": "PEM",
            f"{client}.ssl.keystore.location": str(keystore),
            f"{client}.ssl.client.auth": "none",
        }


def make_broker_certificates(folder: Path) -> tuple[Path, Path]:
    """A throwaway CA and a broker certificate for ``localhost`` and ``127.0.0.1`` (valid two
    days); returns (CA certificate, broker PEM keystore: the broker's unencrypted PKCS#8 key
    followed by its certificate and the CA's). Reused when present."""
    ca_file, keystore = folder / "ca.pem", folder / "broker-keystore.pem"
    if ca_file.exists() and keystore.exists():
        return ca_file, keystore
    openssl = shutil.which("openssl")
    if not openssl:
        raise CertificateError("'openssl' is needed to make the broker's TLS certificate")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broker.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        "basicConstraints=CA:FALSE\n", "utf-8")
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=c2m-sync throwaway CA", "-keyout", "ca.key", "-out", "ca.pem",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", "broker.key", "-out", "broker.csr"],
        ["x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "broker.ext", "-out", "broker.pem"],
    ]
    for step in steps:
        result = subprocess.run([openssl, *step], cwd=folder, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise CertificateError(f"openssl {step[0]} failed:\n{result.stderr[-2000:]}")
    keystore.write_text("".join((folder / name).read_text("utf-8")
                                for name in ("broker.key", "broker.pem", "ca.pem")), "utf-8")
    return ca_file, keystore
