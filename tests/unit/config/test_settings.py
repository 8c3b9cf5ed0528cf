"""Runtime settings: CLI options over C2M_SYNC_* environment over defaults."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sync.cli import main
from sync.config.settings import SettingsError, load_settings


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
    with pytest.raises(SettingsError, match=r"option --broker-url: .*memory:// or kafka://"):
        load_settings({"broker_url": "amqp://nope"}, environ={})
    with pytest.raises(SettingsError, match="C2M_SYNC_TOPIC_PARTITIONS"):
        load_settings(environ={"C2M_SYNC_TOPIC_PARTITIONS": "0"})
