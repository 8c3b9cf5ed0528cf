"""Bad input on the command line is refused up front, in one line naming what is wrong and
where it came from, with a non-zero exit and no traceback: broker and database URLs (options
and environment), database files that are no database, port numbers, counts, and a ``--file``
given to a batch job that reads none."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from sync.cli import main
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.storage.common import DatabaseFileError
from sync.worker.mdm import main as mdm_worker_main


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 2) -> str:
    """Run ``argv``; the one line it printed on stderr after checking its exit code."""
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def _usage_error(capsys: pytest.CaptureFixture[str], entry: object, argv: list[str]) -> str:
    """The last line argparse printed when ``entry`` refused ``argv`` (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        entry(argv)  # type: ignore[operator]
    assert exited.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "argv", "message"), [
    ({}, ["--broker", "kafka://localhost:abc", "topics", "list"],
     "option --broker: Value error, broker address 'localhost:abc': port 'abc' is not a number "
     "from 1 to 65535 (got 'kafka://localhost:abc')"),
    ({}, ["--broker", "kafka://:notaport", "topics", "list"],
     "option --broker: Value error, broker address ':notaport' names no valid host"),
    ({}, ["--broker", "kafka://", "topics", "list"],
     "option --broker: Value error, broker URL names no host:port"),
    ({"C2M_SYNC_BROKER_URL": "kafka://localhost:abc"}, ["batch", "run", "SYNC-RELAY"],
     "environment variable C2M_SYNC_BROKER_URL: Value error, broker address 'localhost:abc'"),
    ({}, ["--broker", "http://x", "ccb", "sync", "list"],
     "option --broker: Value error, broker URL must start with memory:// or kafka://"),
    ({"C2M_SYNC_CCB_DB_URL": "notaurl"}, ["ccb", "sync", "list"],
     "environment variable C2M_SYNC_CCB_DB_URL: Value error, not a database URL (expected "
     "sqlite:///PATH or postgresql://USER@HOST/DATABASE) (got 'notaurl')"),
    ({"C2M_SYNC_CCB_DB_URL": "mysql://x/y"}, ["ccb", "sync", "list"],
     "environment variable C2M_SYNC_CCB_DB_URL: Value error, unsupported database scheme "
     "mysql://: only SQLite and PostgreSQL are supported"),
    ({}, ["--mdm-db-url", "mysql://x/y", "mdm", "us", "list"],
     "option --mdm-db-url: Value error, unsupported database scheme mysql://"),
])
def test_a_bad_setting_is_one_line_naming_the_option_or_variable_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        environ: dict[str, str], argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)  # the default databases would go to ./var
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    err = _refused(capsys, argv)
    assert err.startswith("error: invalid settings: ")
    assert message in err
    assert list(tmp_path.iterdir()) == []  # nothing was opened or created


# --- database files ---------------------------------------------------------------------------


def _garbage(tmp_path: Path) -> Path:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    return garbage


@pytest.mark.parametrize("argv", [["ccb", "sa", "SA-1"], ["ccb", "sync", "list"],
                                  ["batch", "run", "SAACT"]])
def test_a_ccb_database_file_that_is_not_a_database_is_named(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    garbage = _garbage(tmp_path)
    url = f"sqlite:///{garbage}"
    assert _refused(capsys, ["--ccb-db-url", url, *argv]) == (
        f"error: database URL {url!r}: {garbage} is not a SQLite database file")


def test_a_database_url_naming_a_folder_is_named(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    assert _refused(capsys, ["--ccb-db-url", url, "ccb", "sa", "SA-1"]) == (
        f"error: database URL {url!r}: {tmp_path} is a folder, not a database file")
    assert _refused(capsys, ["--mdm-db-url", url, "mdm", "us", "list"]) == (
        f"error: database URL {url!r}: {tmp_path} is a folder, not a database file")


def test_a_database_folder_that_is_a_file_is_named(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    garbage = _garbage(tmp_path)
    url = f"sqlite:///{garbage / 'mdm.db'}"
    assert _refused(capsys, ["--mdm-db-url", url, "mdm", "us", "list"]) == (
        f"error: database URL {url!r}: {garbage} is a file, not a folder")


def test_a_database_folder_that_does_not_exist_is_named_not_made(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A folder in an explicit URL that does not exist is a typing error far more often than a
    wish for a new folder: made, it would leave a worker on a new, empty database."""
    typo = tmp_path / "c2m-dta"
    url = f"sqlite:///{typo / 'ccb.db'}"
    assert _refused(capsys, ["--ccb-db-url", url, "ccb", "sa", "SA-1"]) == (
        f"error: database URL {url!r}: folder {typo} does not exist; create it first (only "
        "the default folder var/ is created)")
    mdm_url = f"sqlite:///{typo / 'mdm.db'}"
    assert _refused(capsys, ["--mdm-db-url", mdm_url, "mdm", "us", "list"]) == (
        f"error: database URL {mdm_url!r}: folder {typo} does not exist; create it first (only "
        "the default folder var/ is created)")
    assert not typo.exists()


def test_the_default_database_folder_is_made_on_first_use(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("C2M_SYNC_CCB_DB_URL", "C2M_SYNC_MDM_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["ccb", "sync", "list"]) == 0
    assert main(["mdm", "us", "list"]) == 0
    assert (tmp_path / "var" / "ccb.db").is_file()
    assert (tmp_path / "var" / "mdm.db").is_file()


def test_every_entry_point_opening_a_store_refuses_a_file_that_is_not_a_database(
        tmp_path: Path) -> None:
    """The API and the workers open their stores as the CLI does."""
    url = f"sqlite:///{_garbage(tmp_path)}"
    admin = load_admin_config()
    with pytest.raises(DatabaseFileError, match="is not a SQLite database file"):
        open_mdm_store(url, admin)
    with pytest.raises(DatabaseFileError, match="is not a SQLite database file"):
        open_outbox(url, admin, FixedClock(dt.date(2025, 3, 3)))


def test_an_empty_file_is_an_empty_database(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    empty = tmp_path / "ccb.db"
    empty.touch()
    assert main(["--ccb-db-url", f"sqlite:///{empty}", "ccb", "sync", "list", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


# --- ports and counts -------------------------------------------------------------------------


@pytest.mark.parametrize(("port", "message"), [("70000", "port 70000 out of range 0..65535"),
                                               ("-1", "port -1 out of range 0..65535"),
                                               ("http", "invalid port 'http'")])
def test_a_health_port_out_of_range_is_refused_by_the_parser(
        capsys: pytest.CaptureFixture[str], port: str, message: str) -> None:
    assert _usage_error(capsys, main, ["worker", "mdm", "--health-port", port]) == (
        f"c2m-sync worker: error: argument --health-port: {message}")
    assert _usage_error(capsys, mdm_worker_main, ["--health-port", port]) == (
        f"python -m sync.worker.mdm: error: argument --health-port: {message}")


@pytest.mark.parametrize(("argv", "message"), [
    (["ccb", "changes", "--limit", "-1"], "c2m-sync ccb changes: error: argument --limit: "
                                          "count -1 below 0"),
    (["ccb", "changes", "--after", "-5"], "c2m-sync ccb changes: error: argument --after: "
                                          "sequence number -5 below 0"),
    (["ccb", "sync", "list", "--limit", "-1"], "c2m-sync ccb sync list: error: argument "
                                               "--limit: count -1 below 0"),
    (["batch", "schedule", "--every", "15m", "SAACT", "--max-runs", "-1"],
     "c2m-sync batch schedule: error: argument --max-runs: count -1 below 1"),
    (["batch", "schedule", "--every", "15m", "SAACT", "--max-runs", "0"],
     "c2m-sync batch schedule: error: argument --max-runs: count 0 below 1"),
])
def test_negative_and_zero_counts_are_refused_by_the_parser(
        capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert _usage_error(capsys, main, argv) == message


# --- batch --file -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["batch", "run", "SAACT", "--file", "/nope.csv"],
    ["batch", "schedule", "--every", "1m", "--max-runs", "1", "SAACT", "--file", "/nope.csv"],
    ["batch", "schedule", "--every", "1m", "--max-runs", "1", "FACOMPL", "SAACT", "--file",
     "/nope.csv"],
])
def test_a_file_given_to_a_batch_that_reads_none_is_refused_before_the_store_is_opened(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    store = tmp_path / "ccb.db"
    assert _refused(capsys, ["--ccb-db-url", f"sqlite:///{store}", *argv], code=1) == (
        "error: batch SAACT takes no --file (only FACOMPL, STOPUPL)")
    assert not store.exists()
