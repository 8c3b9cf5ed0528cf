"""The CLI as a user drives it: version, configuration, and the Kafka launcher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sync.cli import main


def test_version_and_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "sync", "version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("c2m-sync ")


@pytest.mark.parametrize("argv", [["version"], ["batch", "list", "--json"]])
def test_output_to_a_reader_that_has_gone_ends_quietly_with_141(argv: list[str]) -> None:
    """``c2m-sync ... | head``: the reader closes the pipe; no traceback, the shell's 141."""
    reader, writer = os.pipe()
    os.close(reader)  # gone before the first line
    try:
        done = subprocess.run([sys.executable, "-m", "sync.cli", *argv], stdout=writer,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (141, "")


def test_config_show_json_reflects_options_and_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("C2M_SYNC_TOPIC_DEAD_LETTERS", "ops.dead")
    code = main(["--business-date", "2026-02-03", "--broker", "kafka://127.0.0.1:1",
                 "config", "show", "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["settings"]["business_date"] == "2026-02-03"
    assert shown["settings"]["broker_url"] == "kafka://127.0.0.1:1"
    assert shown["settings"]["topics"]["dead_letters"] == "ops.dead"
    assert shown["admin"]["sa_types"]["E-RES"]["us_type"] == "E-RES-US"


def test_broken_admin_file_is_one_line_per_problem_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "admin.yaml"
    broken.write_text("installation: {base_time_zone: Nowhere/Land}\n", "utf-8")
    code = main(["config", "check", str(broken)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{broken}: installation.base_time_zone: unknown IANA time zone" in err
    assert f"{broken}: service_types: missing key" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [["config", "check", "{file}"],
                                     ["--admin-config", "{file}", "ccb", "sync", "list"]])
def test_an_admin_file_that_is_not_utf8_names_the_byte_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"installation:\n  base_time_zone: Europe/Z\xfcrich\n")
    code = main([part.format(file=garbage) for part in command])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    # The Latin-1 "ü" is the 41st byte: 14 of the first line, 26 before it on the second.
    assert err.splitlines() == ["error: invalid admin configuration",
                                f"{garbage}: <top>: cannot read file: not UTF-8 text at byte 41"
                                " (line 2)"]


def test_an_admin_file_with_a_byte_order_mark_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = (Path(__file__).parents[2] / "sync" / "config" / "default_admin.yaml").read_bytes()
    marked = tmp_path / "admin.yaml"
    marked.write_bytes(b"\xef\xbb\xbf" + shipped)
    assert main(["config", "check", str(marked)]) == 0, capsys.readouterr().err


def test_bad_business_date_option_is_rejected_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--business-date", "31/12/2026", "config", "show"])
    assert exited.value.code == 2
    assert "invalid date '31/12/2026'" in capsys.readouterr().err


@pytest.mark.kafka
def test_dev_kafka_start_status_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`c2m-sync dev kafka` runs a real broker that outlives the command, then stops it."""
    from kafka import KafkaAdminClient

    state_dir = str(tmp_path / "kafka")
    try:
        assert main(["dev", "kafka", "start", "--state-dir", state_dir, "--json"]) == 0
        started = json.loads(capsys.readouterr().out)
        admin = KafkaAdminClient(bootstrap_servers=started["bootstrap_servers"])
        try:
            assert admin.describe_cluster()["brokers"][0]["port"] == int(
                started["bootstrap_servers"].rsplit(":", 1)[1])
        finally:
            admin.close()
        # Starting again reuses the running broker.
        assert main(["dev", "kafka", "start", "--state-dir", state_dir, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["pid"] == started["pid"]
        assert main(["dev", "kafka", "status", "--state-dir", state_dir, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["running"] is True
    finally:
        assert main(["dev", "kafka", "stop", "--state-dir", state_dir, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": True}
    assert main(["dev", "kafka", "status", "--state-dir", state_dir]) == 3
