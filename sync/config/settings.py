"""Runtime settings: where the databases and the broker are, how to reach the broker securely,
topic names, the business date.

Precedence, highest first: explicit values (CLI options), ``C2M_SYNC_*`` environment variables,
defaults. Defaults are the embedded set-up: SQLite files under ``./var`` and the in-process bus,
so nothing but Python is needed to run the demo.

Secrets (the SASL password, the TLS key password) are ``SecretStr``: their ``repr``, ``str`` and
JSON dump are asterisks, and no error built here quotes them. They can come from a file
(``C2M_SYNC_KAFKA_SASL_PASSWORD_FILE``), which is how orchestrators hand secrets to processes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "C2M_SYNC_"


class TopicNames(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sync_requests: str = "c2m.sync-requests"
    acknowledgements: str = "c2m.sync-acks"
    dead_letters: str = "c2m.sync-dead-letters"


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSecurity(BaseModel):
    """How Kafka clients authenticate and encrypt: Kafka's own ``security.protocol`` values.

    ``SASL_*`` needs a username and password; ``*SSL`` verifies the broker's certificate against
    ``ssl_cafile`` (the system's CAs when unset) and presents ``ssl_certfile``/``ssl_keyfile``
    when set (mutual TLS).
    """

    # Validation errors must never echo a password back.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol.endswith("SSL")

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        # Checked here, not at the first connection: a typo in a path is a configuration
        # error, and the client libraries' own errors do not name the file.
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} does not exist or is not a file")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        protocol = self.security_protocol
        if self.uses_sasl:
            if not self.sasl_username:
                raise ValueError(f"security protocol {protocol} needs a SASL username "
                                 f"({ENV_PREFIX}KAFKA_SASL_USERNAME)")
            if self.sasl_password is None or not self.sasl_password.get_secret_value():
                raise ValueError(f"security protocol {protocol} needs a SASL password "
                                 f"({ENV_PREFIX}KAFKA_SASL_PASSWORD or "
                                 f"{ENV_PREFIX}KAFKA_SASL_PASSWORD_FILE)")
        elif self.sasl_username is not None or self.sasl_password is not None:
            raise ValueError(f"SASL credentials are set but the security protocol is {protocol}"
                             f" (set {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL to SASL_SSL or "
                             "SASL_PLAINTEXT)")
        tls_files = [name for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
                     if getattr(self, name) is not None]
        if tls_files and not self.uses_ssl:
            raise ValueError(f"{', '.join(tls_files)} set but the security protocol is "
                             f"{protocol} (set {ENV_PREFIX}KAFKA_SECURITY_PROTOCOL to SSL or "
                             "SASL_SSL)")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("ssl_keyfile is set without ssl_certfile (the client certificate "
                             "it belongs to)")
        if self.ssl_key_password is not None and self.ssl_keyfile is None \
                and self.ssl_certfile is None:
            raise ValueError("ssl_key_password is set without a client key")
        return self

    def describe(self) -> str:
        """One line for people: protocol, mechanism and user, never the password."""
        parts: list[str] = [self.security_protocol]
        if self.uses_sasl:
            parts.append(f"{self.sasl_mechanism} as {self.sasl_username!r}")
        if self.uses_ssl:
            parts.append(f"CA {self.ssl_cafile or 'system default'}")
            if self.ssl_certfile is not None:
                parts.append(f"client certificate {self.ssl_certfile}")
            if not self.ssl_check_hostname:
                parts.append("host name not checked")
        return ", ".join(parts)


DEFAULT_PRODUCER_BATCH_BYTES = 256 * 1024
# The producer's request limit (aiokafka's ``max_request_size``) is 1 MiB: a record batch must
# fit in a request.
MAX_PRODUCER_BATCH_BYTES = 1024 * 1024


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    ccb_db_url: str = "sqlite:///var/ccb.db"
    mdm_db_url: str = "sqlite:///var/mdm.db"
    broker_url: str = "memory://"
    topics: TopicNames = TopicNames()
    topic_partitions: int = Field(default=3, ge=1, le=1000)
    business_date: dt.date | None = None
    admin_config: Path | None = None
    kafka_security: KafkaSecurity = KafkaSecurity()
    # The most bytes the producer puts in one record batch of a partition. aiokafka's own
    # default (16 KiB) cut a unit of 200 sync requests into a dozen batches, and the broker's
    # work goes by batches: at 256 KiB the broker spent half the CPU per change. Kafka's
    # brokers accept batches up to about 1 MiB (``message.max.bytes``) unless configured lower.
    kafka_producer_batch_bytes: int = Field(default=DEFAULT_PRODUCER_BATCH_BYTES,
                                            ge=1024, le=MAX_PRODUCER_BATCH_BYTES)

    @field_validator("broker_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "kafka://")):
            raise ValueError("broker URL must start with memory:// or kafka://")
        if value.startswith("kafka://"):
            # Checked here rather than left to the Kafka client: it fails on the first
            # connection, deep in a command, with an error that names neither the setting
            # nor the address.
            kafka_servers(value)
        return value

    @field_validator("ccb_db_url", "mdm_db_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        check_database_url(value)
        return value

    @property
    def kafka_bootstrap_servers(self) -> str:
        """``host:port[,host:port]`` for Kafka clients; only for ``kafka://`` URLs."""
        if not self.broker_url.startswith("kafka://"):
            raise ValueError(f"broker URL {self.broker_url!r} is not a kafka:// URL")
        return kafka_servers(self.broker_url)


KAFKA_URL_FORM = "kafka://HOST:PORT[,HOST:PORT...]"


def kafka_servers(url: str) -> str:
    """The ``host:port[,host:port]`` list of a ``kafka://`` URL (a trailing ``/`` dropped);
    ValueError saying what is wrong when an entry is not ``HOST:PORT`` with a port from 1 to
    65535. The message leaves the URL out: the caller names it."""
    servers = url.removeprefix("kafka://").rstrip("/")
    if not servers.strip():
        raise ValueError(f"broker URL names no host:port ({KAFKA_URL_FORM})")
    for entry in servers.split(","):
        address = entry.strip()
        if not address:
            raise ValueError(f"broker URL has an empty entry in its list ({KAFKA_URL_FORM})")
        host, colon, port = address.rpartition(":")
        if not colon:
            raise ValueError(f"broker address {address!r} has no port ({KAFKA_URL_FORM})")
        # An IPv6 address is written in brackets, [::1]:9092, as Kafka's clients expect.
        bare_host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if ":" in host and bare_host == host:
            raise ValueError(f"broker address {address!r}: an IPv6 address goes in brackets "
                             "([::1]:9092)")
        if not bare_host or any(char in bare_host for char in "/@?#[] \t"):
            raise ValueError(f"broker address {address!r} names no valid host "
                             f"({KAFKA_URL_FORM})")
        if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
            raise ValueError(f"broker address {address!r}: port {port!r} is not a number "
                             "from 1 to 65535")
    return servers


# Database URL schemes (SQLAlchemy driver names) the stores run on: SQLite through the
# standard library's driver, PostgreSQL through psycopg 3 (``postgresql://`` and
# ``postgres://`` are rewritten to it). Any other would fail at the first connection, on a
# driver that is not installed or a dialect the stores were never tested on.
SUPPORTED_DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg",
                              "postgres")
DATABASE_URL_FORMS = "sqlite:///PATH or postgresql://USER@HOST/DATABASE"


def check_database_url(url: str) -> None:
    """ValueError when ``url`` is not a database URL the stores support (the message leaves
    the URL out: the caller names it, without its password)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL (expected {DATABASE_URL_FORMS})") from None
    if parsed.drivername not in SUPPORTED_DATABASE_SCHEMES:
        schemes = ", ".join(f"{scheme}://" for scheme in SUPPORTED_DATABASE_SCHEMES)
        raise ValueError(f"unsupported database scheme {parsed.drivername}://: only SQLite "
                         f"and PostgreSQL are supported ({schemes})")


# environment variable suffix -> settings field (dotted for nested topic names)
_ENV_FIELDS = {
    "CCB_DB_URL": "ccb_db_url",
    "MDM_DB_URL": "mdm_db_url",
    "BROKER_URL": "broker_url",
    "TOPIC_SYNC_REQUESTS": "topics.sync_requests",
    "TOPIC_ACKNOWLEDGEMENTS": "topics.acknowledgements",
    "TOPIC_DEAD_LETTERS": "topics.dead_letters",
    "TOPIC_PARTITIONS": "topic_partitions",
    "BUSINESS_DATE": "business_date",
    "ADMIN_CONFIG": "admin_config",
    "KAFKA_SECURITY_PROTOCOL": "kafka_security.security_protocol",
    "KAFKA_SASL_MECHANISM": "kafka_security.sasl_mechanism",
    "KAFKA_SASL_USERNAME": "kafka_security.sasl_username",
    "KAFKA_SASL_PASSWORD": "kafka_security.sasl_password",
    "KAFKA_SSL_CAFILE": "kafka_security.ssl_cafile",
    "KAFKA_SSL_CERTFILE": "kafka_security.ssl_certfile",
    "KAFKA_SSL_KEYFILE": "kafka_security.ssl_keyfile",
    "KAFKA_SSL_KEY_PASSWORD": "kafka_security.ssl_key_password",
    "KAFKA_SSL_CHECK_HOSTNAME": "kafka_security.ssl_check_hostname",
    "KAFKA_PRODUCER_BATCH_BYTES": "kafka_producer_batch_bytes",
}

# settings field -> the command-line option that sets it (the same in ``c2m-sync``, its
# ``demo`` command and ``python -m sync.worker.mdm``). An error names the option a user typed,
# which is not always the field's name (``--broker`` sets ``broker_url``).
CLI_OPTIONS = {
    "ccb_db_url": "--ccb-db-url",
    "mdm_db_url": "--mdm-db-url",
    "broker_url": "--broker",
    "business_date": "--business-date",
    "admin_config": "--admin-config",
}

# Secrets whose value may instead be read from a file named by ``<variable>_FILE``.
_SECRET_FIELDS = frozenset({"kafka_security.sasl_password", "kafka_security.ssl_key_password"})


class SettingsError(ValueError):
    """A setting with a bad value; names the environment variable or option it came from."""


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from ``overrides`` (dotted field names, None = not given) over the
    ``C2M_SYNC_*`` environment over the defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for suffix, field in _ENV_FIELDS.items():
        name = ENV_PREFIX + suffix
        if field in _SECRET_FIELDS and env.get(name + "_FILE"):
            if env.get(name):
                raise SettingsError(f"invalid settings: set {name} or {name}_FILE, not both")
            values[field] = _read_secret_file(name + "_FILE", env[name + "_FILE"])
            origin[field] = f"environment variable {name}_FILE"
        elif env.get(name):
            values[field] = env[name]
            origin[field] = f"environment variable {name}"
    for field, value in (overrides or {}).items():
        if value is not None:
            values[field] = value
            # A value given by code rather than by a user's option is named by its field.
            option = CLI_OPTIONS.get(field)
            origin[field] = f"option {option}" if option is not None else f"setting {field}"
    nested: dict[str, Any] = {}
    for field, value in values.items():
        if "." in field:
            section, key = field.split(".", 1)
            nested.setdefault(section, {})[key] = value
        else:
            nested[field] = value
    try:
        return Settings.model_validate(nested)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"])
            where = origin.get(field, field)
            problems.append(f"{where}: {item['msg']}{_shown_input(field, item['input'])}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _shown_input(field: str, value: Any) -> str:
    """`` (got ...)`` for a bad value, except a secret or a whole section (which holds them);
    a database URL's password is masked."""
    if field in _SECRET_FIELDS or isinstance(value, Mapping | BaseModel):
        return ""
    if field in _DATABASE_URL_FIELDS and isinstance(value, str):
        return f" (got {_without_password(value)!r})"
    return f" (got {value!r})"


_DATABASE_URL_FIELDS = frozenset(name for name in Settings.model_fields if name.endswith("_db_url"))
# ``scheme://user:password@``: matched on the text, since a URL too broken to parse may still
# hold a password.
_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _without_password(url: str) -> str:
    return _URL_PASSWORD.sub(r"\1***@", url)


def _read_secret_file(variable: str, path: str) -> str:
    """The secret in ``path`` without its trailing line break (files written by ``echo``)."""
    try:
        secret = Path(path).read_text("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise SettingsError(f"invalid settings: environment variable {variable}: cannot read "
                            f"{path!r}: {reason}") from None
    if not secret:
        raise SettingsError(f"invalid settings: environment variable {variable}: {path!r} "
                            "is empty")
    return secret
