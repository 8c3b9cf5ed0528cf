"""Runtime settings: CLI options over C2M_SYNC_* environment over defaults."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re

import pytest

from sync.cli import build_parser, main
from sync.config.settings import (
    _ENV_FIELDS,
    CLI_OPTIONS,
    Settings,
    SettingsError,
    load_settings,
)
from sync.worker.mdm import main as worker_main


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings(environ={})
    assert settings.broker_url == "memory://"
    assert settings.ccb_db_url.startswith("sqlite:///")
    assert settings.mdm_db_url.startswith("sqlite:///")
    assert settings.business_date is None
    assert settings.topic_partitions == 3


def test_environment_overrides_defaults_and_options_override_environment() -> None:
    environ = {
        "C2M_SYNC_BROKER_URL": "kafka://127.0.0.1:9092",
        "C2M_SYNC_BUSINESS_DATE": "2026-03-01",
        "C2M_SYNC_TOPIC_SYNC_REQUESTS": "utility.sa-sync",
        "C2M_SYNC_CCB_DB_URL": "postgresql+psycopg://ccb@localhost/ccb",
    }
    settings = load_settings({"business_date": dt.date(2026, 4, 1), "broker_url": None},
                             environ=environ)
    assert settings.broker_url == "kafka://127.0.0.1:9092"
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.business_date == dt.date(2026, 4, 1)
    assert settings.topics.sync_requests == "utility.sa-sync"
    assert settings.topics.acknowledgements == "c2m.sync-acks"
    assert settings.ccb_db_url == "postgresql+psycopg://ccb@localhost/ccb"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"C2M_SYNC_BUSINESS_DATE": "2026-13-45"})
    assert "environment variable C2M_SYNC_BUSINESS_DATE" in str(caught.value)
    assert "2026-13-45" in str(caught.value)


def test_producer_batch_bytes_from_the_environment_within_the_request_limit() -> None:
    assert load_settings(environ={}).kafka_producer_batch_bytes == 256 * 1024
    settings = load_settings(environ={"C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES": "65536"})
    assert settings.kafka_producer_batch_bytes == 65536
    for bad in ("0", "2000000", "lots"):
        with pytest.raises(SettingsError) as caught:
            load_settings(environ={"C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES": bad})
        assert "environment variable C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES" in str(caught.value)
        assert repr(bad) in str(caught.value)


def test_config_show_says_how_large_a_record_batch_may_grow(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("C2M_SYNC_KAFKA_PRODUCER_BATCH_BYTES", "65536")
    assert main(["config", "show"]) == 0
    assert "record batch : up to 65,536 bytes per partition and write" in capsys.readouterr().out
    assert main(["config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["kafka_producer_batch_bytes"] == 65536


def test_bad_option_names_the_option() -> None:
    with pytest.raises(SettingsError, match=r"option --broker: .*memory:// or kafka://"):
        load_settings({"broker_url": "amqp://nope"}, environ={})
    with pytest.raises(SettingsError, match="C2M_SYNC_TOPIC_PARTITIONS"):
        load_settings(environ={"C2M_SYNC_TOPIC_PARTITIONS": "0"})


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


@pytest.mark.parametrize("field", sorted(set(_ENV_FIELDS.values())))
def test_a_bad_value_of_every_setting_names_an_option_the_command_line_has(field: str) -> None:
    """Whatever the field, the error names an option ``c2m-sync`` (and ``python -m
    sync.worker.mdm``, for the settings it takes) accepts, or says it was a setting given by
    code: never an option made up from the field's name."""
    with pytest.raises(SettingsError) as caught:
        load_settings({field: object()}, environ={})
    message = str(caught.value)
    named = re.search(r"invalid settings: option (\S+): ", message)
    if field in CLI_OPTIONS:
        assert named is not None, message
        assert named.group(1) == CLI_OPTIONS[field]
        assert named.group(1) in _option_strings(build_parser())
    else:
        assert named is None, message
        assert f"invalid settings: setting {field}: " in message


def test_the_mdm_worker_names_its_options_as_the_settings_errors_do(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert worker_main(["--broker", "kafka://localhost:abc"]) == 2
    assert capsys.readouterr().err.startswith("error: invalid settings: option --broker: ")


@pytest.mark.parametrize(("url", "reason"), [
    ("kafka://", "broker URL names no host:port"),
    ("kafka:///", "broker URL names no host:port"),
    ("kafka://localhost:abc", "broker address 'localhost:abc': port 'abc' is not a number "
                              "from 1 to 65535"),
    ("kafka://:notaport", "broker address ':notaport' names no valid host"),
    ("kafka://:9092", "broker address ':9092' names no valid host"),
    ("kafka://localhost", "broker address 'localhost' has no port"),
    ("kafka://h1:9092,h2", "broker address 'h2' has no port"),
    ("kafka://h1:9092,,h2:9092", "broker URL has an empty entry in its list"),
    ("kafka://h1:9092,", "broker URL has an empty entry in its list"),
    ("kafka://h1:0", "port '0' is not a number from 1 to 65535"),
    ("kafka://h1:65536", "port '65536' is not a number from 1 to 65535"),
    ("kafka://h1:-1", "port '-1' is not a number from 1 to 65535"),
    ("kafka://h1:9092/topic", "port '9092/topic' is not a number from 1 to 65535"),
    ("kafka://::1:9092", "an IPv6 address goes in brackets"),
])
def test_every_kafka_address_needs_a_host_and_a_port_from_1_to_65535(url: str,
                                                                     reason: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"C2M_SYNC_BROKER_URL": url})
    assert str(caught.value).startswith(
        "invalid settings: environment variable C2M_SYNC_BROKER_URL: ")
    assert reason in str(caught.value)
    assert f"(got {url!r})" in str(caught.value)


@pytest.mark.parametrize("url", ["kafka://localhost:9092", "kafka://h1:9092,h2:9093/",
                                 "kafka://h1:1, h2:65535", "kafka://[::1]:9092",
                                 "kafka://broker-1.example.com:9093"])
def test_kafka_urls_with_a_port_on_every_address_are_accepted(url: str) -> None:
    assert load_settings({"broker_url": url}, environ={}).broker_url == url


@pytest.mark.parametrize("field", [name for name in Settings.model_fields
                                   if name.endswith("_db_url")])
@pytest.mark.parametrize(("url", "reason"), [
    ("notaurl", "not a database URL (expected sqlite:///PATH or postgresql://"),
    ("mysql://x/y", "unsupported database scheme mysql://: only SQLite and PostgreSQL"),
    ("postgresql+psycopg2://x/y", "unsupported database scheme postgresql+psycopg2://"),
    ("oracle://scott:tiger@db/orcl", "unsupported database scheme oracle://"),
])
def test_database_urls_are_sqlite_or_postgresql(field: str, url: str, reason: str) -> None:
    variable = "C2M_SYNC_" + field.upper()
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={variable: url})
    message = str(caught.value)
    assert message.startswith(f"invalid settings: environment variable {variable}: ")
    assert reason in message
    assert "tiger" not in message  # a password is never shown


@pytest.mark.parametrize("url", ["sqlite:///var/ccb.db", "sqlite:////srv/c2m/ccb.db",
                                 "sqlite://", "sqlite+pysqlite:///x.db",
                                 "postgresql://ccb@db/ccb", "postgres://ccb@db/ccb",
                                 "postgresql+psycopg://ccb:secret@db:5432/ccb"])
def test_sqlite_and_postgresql_urls_are_accepted(url: str) -> None:
    settings = load_settings({"ccb_db_url": url, "mdm_db_url": url}, environ={})
    assert (settings.ccb_db_url, settings.mdm_db_url) == (url, url)


def test_a_bad_database_url_from_an_option_hides_its_password() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"mdm_db_url": "mysql://mdm:s3cret@db/mdm"}, environ={})
    assert "option --mdm-db-url: " in str(caught.value)
    assert "(got 'mysql://mdm:***@db/mdm')" in str(caught.value)
    assert "s3cret" not in str(caught.value)
