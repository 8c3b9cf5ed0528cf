"""The long-running commands tune their own process's garbage collector, and only their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sync.cli
from sync.process_tuning import YOUNGEST_GENERATION_THRESHOLD


def test_tuning_freezes_what_is_loaded_and_collects_the_youngest_generation_less_often() -> None:
    # In a process of its own: freezing the test run's objects would keep its cyclic garbage.
    probe = ("import gc; from sync.process_tuning import tune_garbage_collection; "
             "before = gc.get_threshold(); tune_garbage_collection(); "
             "print(before[1:] == gc.get_threshold()[1:], gc.get_threshold()[0], "
             "gc.get_freeze_count() > 0)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", str(YOUNGEST_GENERATION_THRESHOLD), "True"]


@pytest.mark.parametrize(("argv", "tuned"), [
    (["batch", "run", "NO-SUCH-JOB"], True),
    (["batch", "schedule", "NO-SUCH-JOB", "--every", "1m", "--max-runs", "1"], True),
    (["version"], False),
])
def test_a_long_running_command_started_as_a_program_tunes_its_process(
        argv: list[str], tuned: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[bool] = []
    monkeypatch.setattr(sync.cli, "tune_garbage_collection", lambda: calls.append(True))
    monkeypatch.setattr(sys, "argv", ["c2m-sync", *argv])
    sync.cli.main()
    assert calls == ([True] if tuned else [])


def test_a_command_called_from_other_code_leaves_the_process_alone(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    calls: list[bool] = []
    monkeypatch.setattr(sync.cli, "tune_garbage_collection", lambda: calls.append(True))
    sync.cli.main(["batch", "run", "NO-SUCH-JOB"])
    assert calls == []
