"""The ``kafka_security`` settings as each Kafka client library wants them.

One place turns ``KafkaSecurity`` into keyword arguments for aiokafka (the bus's producer and
consumers), kafka-python (the topic admin client, the launcher's readiness probe), faust
(``broker_credentials``) and confluent-kafka (librdkafka's dotted configuration), so the clients
cannot drift apart: the same protocol, mechanism, user and TLS trust everywhere.

The dictionaries returned here hold the password in clear text, because the client libraries
need it so: hand them to a client's constructor and nowhere else (never log or print them).
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from sync.config.settings import KafkaSecurity
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


def _password(security: KafkaSecurity) -> str | None:
    return None if security.sasl_password is None else security.sasl_password.get_secret_value()


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
                       "sasl.password": _password(security) or ""})
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
