"""The ``kafka_security`` settings as each Kafka client library wants them.

One place turns ``KafkaSecurity`` into keyword arguments for aiokafka (the bus's producer and
consumers), kafka-python (the topic admin client, the launcher's readiness probe), faust
(``broker_credentials``) and confluent-kafka (librdkafka's dotted configuration), so the clients
cannot drift apart: the same protocol, mechanism, user and TLS trust everywhere.

The dictionaries returned here hold the password in clear text, because the client libraries
need it so: hand them to a client's constructor and nowhere else (never log or print them).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from sync.config.settings import ENV_PREFIX, KafkaSecurity
from sync.transport.bus import BusError

PLAINTEXT = KafkaSecurity()


class KafkaSecurityError(BusError):
    """The TLS files could not be loaded: names the files, never a password."""


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """A client TLS context trusting ``ssl_cafile`` (else the system's CAs), presenting the
    client certificate when one is configured; None when the protocol has no TLS."""
    if not security.uses_ssl:
        return None
    key_password = (None if security.ssl_key_password is None
                    else security.ssl_key_password.get_secret_value())
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=security.ssl_cafile,
                                     certfile=security.ssl_certfile,
                                     keyfile=security.ssl_keyfile, password=key_password)
    except (ssl.SSLError, OSError) as error:
        # ssl's own message does not say which file it was reading.
        files = ", ".join(str(path) for path in (security.ssl_cafile, security.ssl_certfile,
                                                 security.ssl_keyfile) if path is not None)
        reason = getattr(error, "reason", None) or error.strerror or str(error)
        raise KafkaSecurityError(f"cannot load the Kafka TLS files ({files or 'system CAs'}):"
                                 f" {reason}") from None
    # Turned off only for brokers reached by an address their certificate does not name;
    # the certificate chain is still verified.
    context.check_hostname = security.ssl_check_hostname
    return context


class MaskedSecret(str):
    """A password the client libraries use as the ``str`` it is, but whose ``repr`` is
    asterisks: kafka-python logs its whole configuration at DEBUG (``%s`` of a dict, which
    shows each value's ``repr``), and so would any other client that logs its settings."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


def _password(security: KafkaSecurity) -> MaskedSecret | None:
    if security.sasl_password is None:
        return None
    return MaskedSecret(security.sasl_password.get_secret_value())


def aiokafka_options(security: KafkaSecurity,
                     context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``. ``context`` reuses an
    already built TLS context (one per bus instead of one per client)."""
    options: dict[str, Any] = {"security_protocol": security.security_protocol}
    if security.uses_ssl:
        options["ssl_context"] = context or ssl_context(security)
    if security.uses_sasl:
        options.update(sasl_mechanism=security.sasl_mechanism,
                       sasl_plain_username=security.sasl_username,
                       sasl_plain_password=_password(security))
    return options


def kafka_python_options(security: KafkaSecurity,
                         context: ssl.SSLContext | None = None) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients (``KafkaAdminClient``, ``KafkaConsumer``):
    the same names as aiokafka's."""
    return aiokafka_options(security, context)


def faust_credentials(security: KafkaSecurity) -> Any:
    """faust's ``broker_credentials``: ``SASLCredentials`` (with a TLS context for SASL_SSL),
    ``SSLCredentials`` for SSL, None for PLAINTEXT."""
    import faust

    if security.uses_sasl:
        # faust chooses SASL_SSL over SASL_PLAINTEXT by the presence of the TLS context.
        return faust.SASLCredentials(username=security.sasl_username,
                                     password=_password(security),
                                     mechanism=security.sasl_mechanism,
                                     ssl_context=ssl_context(security))
    if security.uses_ssl:
        return faust.SSLCredentials(ssl_context(security))
    return None


def confluent_config(security: KafkaSecurity) -> dict[str, str]:
    """librdkafka configuration entries (confluent-kafka), to merge into a client's config."""
    config: dict[str, str] = {"security.protocol": security.security_protocol}
    if security.uses_sasl:
        config.update({"sasl.mechanism": security.sasl_mechanism,
                       "sasl.username": security.sasl_username or "",
                       # librdkafka copies it into C memory: a plain str
                       "sasl.password": "".join(_password(security) or "")})
    if security.uses_ssl:
        if security.ssl_cafile is not None:
            config["ssl.ca.location"] = str(security.ssl_cafile)
        if security.ssl_certfile is not None:
            config["ssl.certificate.location"] = str(security.ssl_certfile)
        if security.ssl_keyfile is not None:
            config["ssl.key.location"] = str(security.ssl_keyfile)
        if security.ssl_key_password is not None:
            config["ssl.key.password"] = security.ssl_key_password.get_secret_value()
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if security.ssl_check_hostname else "none")
    return config


async def connection_refusal(bootstrap_servers: str, security: KafkaSecurity,
                             timeout_s: float = 10.0) -> str | None:
    """Why the brokers refuse this client, when they do: a rejected login, a TLS handshake
    that failed, a SASL mechanism the broker does not enable. None when they cannot be reached
    at all (or can be reached now).

    aiokafka reports a refused login only as "Unable to bootstrap" (the reason goes to its log),
    so after a failed start one connection is opened directly to learn the reason.
    """
    options = aiokafka_options(security)
    options.pop("bootstrap_servers", None)
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            connection = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000),
                            **options), timeout_s)
        except SaslAuthenticationFailed as error:
            return (f"authentication failed for user {security.sasl_username!r} with "
                    f"{security.sasl_mechanism} ({_broker_words(error)}); check "
                    f"{ENV_PREFIX}KAFKA_SASL_USERNAME and {ENV_PREFIX}KAFKA_SASL_PASSWORD"
                    f"[_FILE]")
        except ssl.SSLError as error:
            return (f"TLS handshake with {server} failed: {error.reason or error} (trusted CA: "
                    f"{security.ssl_cafile or 'system default'}; {ENV_PREFIX}KAFKA_SSL_*)")
        except KafkaConnectionError:
            continue
        except KafkaError as error:  # e.g. the SASL mechanism is not enabled on the broker
            return f"the broker at {server} refused the connection: {error}"
        except (OSError, TimeoutError, ValueError):
            continue
        connection.close()
    return None


def _broker_words(error: KafkaError) -> str:
    """The broker's explanation without aiokafka's ``[Error 58] Name:`` prefix."""
    return str(error).split(": ", 1)[-1]
