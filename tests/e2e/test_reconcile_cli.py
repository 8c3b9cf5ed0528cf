"""`c2m-sync reconcile` and `c2m-sync replay` as an operator runs them: what they refuse, with
exit code 2 and one line, before anything is changed. (Drift, repair and rebuild on a real
broker: tests/integration/test_reconcile_kafka.py.)"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sync.cli import main
from sync.cli.common import CliError
from sync.cli.reconcile import parse_since
from sync.config.admin import load_admin_config
from sync.mapping.sa_to_us import usage_subscription_command
from sync.pipeline.stores import open_mdm_store
from sync.storage.mdm_census import mdm_row_counts
from tests.unit.mapping.builders import sa_message

ADMIN = load_admin_config()


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("C2M_SYNC_CCB_DB_URL", f"sqlite:///{tmp_path / 'ccb.db'}")
    monkeypatch.setenv("C2M_SYNC_MDM_DB_URL", f"sqlite:///{tmp_path / 'mdm.db'}")
    monkeypatch.setenv("C2M_SYNC_TOPIC_SYNC_REQUESTS", f"e2e.requests-{uuid.uuid4().hex[:8]}")
    return tmp_path


@pytest.mark.parametrize("argv", [["reconcile"], ["replay", "--mdm-db", "sqlite:///x.db"]])
def test_the_in_process_bus_holds_no_topic_from_the_command_line(
        argv: list[str], stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--broker", "memory://", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the in-process bus (memory://) lives inside one process")
    assert "--broker kafka://HOST:PORT" in err
    assert list(stores.iterdir()) == []  # refused before any store was opened


def test_a_bad_since_is_a_usage_error(stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--broker", "kafka://127.0.0.1:1", "reconcile", "--since", "yesterday"]) == 2
    assert "--since: invalid time 'yesterday'" in capsys.readouterr().err


def test_replay_needs_the_store_to_rebuild(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay"])
    assert exited.value.code == 2
    assert "--mdm-db" in capsys.readouterr().err


def test_replay_refuses_a_store_that_is_not_empty_before_contacting_the_broker(
        stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{stores / 'held.db'}"
    store = open_mdm_store(url, ADMIN)
    command = usage_subscription_command(sa_message("SA-1"))
    assert command is not None
    store.apply(command)
    before = mdm_row_counts(store)
    store.dispose()
    # Port 1 answers nothing: a broker contacted first would fail differently.
    assert main(["--broker", "kafka://127.0.0.1:1", "replay", "--mdm-db", url]) == 2
    err = capsys.readouterr().err
    assert f"error: {url}: the MDM store is not empty" in err
    assert "mdm_usage_subscriptions: 1 rows" in err
    store = open_mdm_store(url, ADMIN)
    assert mdm_row_counts(store) == before
    store.dispose()


def test_an_unreachable_broker_is_exit_code_2_with_one_line(
        stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--broker", "kafka://127.0.0.1:1", "reconcile", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: kafka://127.0.0.1:1: ")


def test_since_is_an_iso_time_in_the_base_time_zone_unless_it_names_one() -> None:
    chicago = ZoneInfo("America/Chicago")
    assert parse_since("2025-03-03", "America/Chicago") == dt.datetime(2025, 3, 3, tzinfo=chicago)
    assert parse_since("2025-03-03T08:30", "America/Chicago") == dt.datetime(
        2025, 3, 3, 8, 30, tzinfo=chicago)
    assert parse_since("2025-03-03T08:30:00+00:00", "America/Chicago") == dt.datetime(
        2025, 3, 3, 8, 30, tzinfo=dt.UTC)
    assert parse_since(None, "UTC") is None
    with pytest.raises(CliError, match="invalid time"):
        parse_since("03/03/2025", "UTC")
