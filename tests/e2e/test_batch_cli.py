"""``c2m-sync batch`` as operations drive it, on a SQLite file: the landlord/tenant building, a
tenant stop, SAACT twice on the same date (the second changes nothing), FACOMPL from a file,
SAACT again, the schedule loop, and a run stopped by SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from bench.saact_data import populate
from bench.store import open_production_store
from sync.batches import JobContext, load_jobs
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.pipeline.stores import open_outbox
from sync.storage.ccb_batch_queries import SqlBatchQueries
from tests.api.support import reject, send_pending
from tests.e2e.test_ccb_cli import SAMPLE, Cli

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

STOP_DATE = "2025-03-05"


@pytest.fixture
def cli(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(sqlite_url, capsys)
    cli.json("ccb", "load", str(SAMPLE))
    return cli


def _stop_unit_1(cli: Cli) -> list[str]:
    """Tenant of unit 1 stops electric and gas; the landlord's reverted starts follow. The
    FAs of both (tenant stop, landlord start) are created at request time."""
    result = cli.json("ccb", "request-stop", "A-TN-01", "--premise", "PR-4410-1",
                      "--stop-date", STOP_DATE)
    fas: list[str] = result["field_activities"]
    assert len(fas) == 4
    return fas


def _batch(cli: Cli, *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli.run("batch", "run", *args, "--json")
    return code, json.loads(out), err


def test_step_6_0_saact_twice_on_the_same_date_changes_nothing_the_second_time(cli: Cli) -> None:
    _stop_unit_1(cli)

    code, first, err = _batch(cli, "SAACT", "--date", STOP_DATE)
    assert (code, err) == (0, "")  # no progress bar when stderr is not a terminal
    assert (first["business_date"], first["examined"], first["changed"],
            first["todos_raised"]) == (STOP_DATE, 4, 0, 4)
    counts = cli.row_counts()

    code, second, _err = _batch(cli, "SAACT", "--date", STOP_DATE)

    assert code == 0
    assert (second["changed"], second["todos_raised"], second["nothing_to_do"]) == (0, 0, True)
    assert cli.row_counts() == counts
    todos = cli.json("ccb", "todo", "list", "--type", "TD-SAACT")
    assert len(todos) == 4
    # The worklist page by page (6.1): each entry once, in the same order.
    pages = [cli.json("ccb", "todo", "list", "--type", "TD-SAACT", "--limit", "3", "--offset",
                      offset) for offset in ("0", "3")]
    assert pages == [todos[:3], todos[3:]]
    code, out, _err = cli.run("ccb", "todo", "list", "--type", "TD-SAACT", "--limit", "3")
    assert code == 0
    assert "To Do entries 1-3 of 4" in out
    with pytest.raises(SystemExit) as usage:
        cli.run("ccb", "todo", "list", "--limit", "-1")
    assert usage.value.code == 2
    assert "argument --limit: count -1 below 0" in cli.capsys.readouterr().err
    code, out, _err = cli.run("batch", "run", "SAACT", "--date", STOP_DATE)
    assert out.strip() == (f"SAACT on {STOP_DATE}: examined 4, changed 0, To Dos raised 0,"
                           " errors 0 - nothing to do")


def test_step_5_9_facompl_file_then_saact_stops_and_activates(cli: Cli, tmp_path: Path) -> None:
    fas = _stop_unit_1(cli)
    _batch(cli, "SAACT", "--date", STOP_DATE)
    upload = tmp_path / "fa-completions.csv"
    rows = [f"{fa_id},{STOP_DATE}T08:30:00,{1000 + index}" for index, fa_id in enumerate(fas)]
    upload.write_text("fa_id,completed_at,read_value\n" + "\n".join(rows)
                      + "\nFA-999,2025-03-05T08:30:00,1\n", "utf-8")

    code, report, _err = _batch(cli, "FACOMPL", "--date", STOP_DATE, "--file", str(upload))

    assert code == 1  # a bad row makes the run exit 1; the good rows are applied
    assert report["changed"] == 4
    assert report["errors"] == [{"entity": "row", "entity_id": "5",
                                 "reason": "FA 'FA-999' not found (fa_id)"}]

    code, saact, _err = _batch(cli, "SAACT", "--date", STOP_DATE)
    assert (code, saact["changed"], saact["todos_raised"]) == (0, 4, 0)
    tenant = cli.json("ccb", "sa", "SA-TN01-E")
    assert tenant["sa"]["status"] == "40"
    assert [link["stop_read"] for link in tenant["links"]] == [1000.0]
    assert cli.json("ccb", "todo", "list", "--type", "TD-SAACT", "--status", "open") == []
    # Resolved by SAACT: in the history, not in the worklist.
    assert len(cli.json("ccb", "todo", "list", "--type", "TD-SAACT")) == 4
    assert cli.json("ccb", "todo", "list", "--type", "TD-SAACT", "--unfinished") == []


def test_batch_list_and_refusals_are_one_line(cli: Cli) -> None:
    listing = cli.json("batch", "list")
    assert [job["code"] for job in listing][:7] == [
        "SAACT", "PSASPM", "TD-SSFTL", "FANRMRCO", "FACOMPL", "TD-CCCB",
        "STOPUPL"]
    assert cli.fails("batch", "run", "FACOMPL") == \
        "error: FACOMPL needs --file (a CSV or JSON upload)"
    assert cli.fails("batch", "run", "NOPE").startswith("error: unknown batch 'NOPE' (known:")
    assert cli.fails("batch", "schedule", "--every", "soon", "SAACT").startswith(
        "error: invalid period 'soon'")


def test_every_batch_runs_on_the_cli_and_is_idempotent(cli: Cli) -> None:
    _stop_unit_1(cli)
    for code in ("PSASPM", "TD-SSFTL", "FANRMRCO", "TD-CCCB", "SAACT"):
        _batch(cli, code, "--date", "2025-04-20")
        counts = cli.row_counts()
        exit_code, again, _err = _batch(cli, code, "--date", "2025-04-20")
        assert exit_code == 0
        assert again["nothing_to_do"], (code, again)
        assert cli.row_counts() == counts, code


def test_schedule_runs_rounds_and_prints_one_json_line_per_report(cli: Cli) -> None:
    _stop_unit_1(cli)

    code, out, err = cli.run("--business-date", STOP_DATE, "batch", "schedule", "--every", "1s",
                             "--max-runs", "2", "SAACT", "TD-SSFTL", "--json",
                             business_date=STOP_DATE)

    assert (code, err) == (0, "")
    reports = [json.loads(line) for line in out.strip().splitlines()]
    assert [(r["code"], r["todos_raised"]) for r in reports] == [
        ("SAACT", 4), ("TD-SSFTL", 0), ("SAACT", 0), ("TD-SSFTL", 0)]


@pytest.mark.parametrize(("command", "exit_code"), [
    (("run", "SAACT"), 3),
    (("schedule", "--every", "1h", "SAACT", "TD-SSFTL"), 0),
], ids=["run", "schedule"])
def test_steps_5_9_6_0_sigterm_ends_a_batch_run_after_the_unit_of_work_under_way(
        tmp_path: Path, command: tuple[str, ...], exit_code: int) -> None:
    """A service manager's SIGTERM: the job under way ends between two chunks (whole chunks
    applied, nothing of the next) and its report says so; ``run`` exits 3, a schedule ends
    (exit 0) without starting the round's next job; the next run does the rest."""
    engine, count_moved, base = _due_sas(tmp_path)
    options = ["--chunk-size", "10", "--json"]
    code, out, err = _stopped_midway([*base, *command, *options],
                                     lambda: count_moved() >= 50)

    # One report: a schedule does not start the round's next job (TD-SSFTL) after the stop.
    [report] = [json.loads(out)] if command[0] == "run" \
        else [json.loads(line) for line in out.strip().splitlines()]
    assert code == exit_code, err
    assert "SIGTERM: stopping" in err
    assert (report["code"], report["stopped"]) == ("SAACT", True)
    done = count_moved()
    assert report["examined"] == done  # every SA it counted is applied, no other
    assert done % 10 == 0
    assert 50 <= done < 20_000

    again = subprocess.run([*base, "run", "SAACT", *options], env=ENV, capture_output=True,
                           text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    rest = json.loads(again.stdout)
    assert (rest["stopped"], rest["examined"]) == (False, 20_000 - done)
    assert count_moved() == 20_000
    engine.dispose()


def test_step_6_0_a_second_run_of_a_job_under_way_is_refused_and_a_schedule_skips_it(
        tmp_path: Path) -> None:
    """Two runs of SAACT over one database (an operator's while the night's is under way):
    the second is refused at once naming the first's process and changes nothing (exit 4);
    a schedule's round skips SAACT and runs its other jobs; the first run does every SA."""
    engine, count_moved, base = _due_sas(tmp_path)
    with _under_way([*base, "run", "SAACT", "--chunk-size", "10", "--json"],
                    lambda: count_moved() >= 50) as first:
        second = subprocess.run([*base, "run", "SAACT", "--json"], env=ENV,
                                capture_output=True, text=True, timeout=120, check=False)
        round_ = subprocess.run([*base, "schedule", "--every", "1h", "--max-runs", "1", "SAACT",
                                 "TD-SSFTL", "--json"], env=ENV, capture_output=True, text=True,
                                timeout=120, check=False)
        assert first.poll() is None, "the first run ended before the others were refused"
        out, err = first.communicate(timeout=300)

    assert (second.returncode, second.stdout) == (4, "")
    assert second.stderr.startswith(
        f"error: batch SAACT is already running (pid {first.pid} on "), second.stderr
    assert "nothing was run" in second.stderr
    assert round_.returncode == 0, round_.stderr
    assert round_.stderr.startswith(
        f"skipped: batch SAACT is already running (pid {first.pid} on "), round_.stderr
    assert [json.loads(line)["code"] for line in round_.stdout.splitlines()] == ["TD-SSFTL"]
    assert first.returncode == 0, err
    report = json.loads(out)
    assert (report["examined"], report["changed"], report["errors"]) == (20_000, 20_000, [])
    assert count_moved() == 20_000
    engine.dispose()


def test_step_6_0_a_run_whose_lock_file_is_removed_stops_before_its_next_unit_exit_5(
        tmp_path: Path) -> None:
    """The lock file of a SAACT run under way removed by hand (a cleanup script, an operator
    who took it for a stale lock): a second run could now get in beside it, so the run stops
    before its next chunk, saying why and how far it got, and exits 5; what it did is
    committed, and a run again does the rest."""
    engine, count_moved, base = _due_sas(tmp_path)
    lock_file = tmp_path / "ccb.db-batch-SAACT"
    with _under_way([*base, "run", "SAACT", "--chunk-size", "10", "--json"],
                    lambda: count_moved() >= 50) as run:
        lock_file.unlink()
        out, err = run.communicate(timeout=300)

    assert (run.returncode, out) == (5, ""), err
    done = count_moved()
    assert err == (f"error: batch SAACT lost its run lock (its lock file {lock_file} was "
                   f"removed while the run held it) and stopped after {done} items, so that "
                   "no second run works beside it: what it did is committed; run it again "
                   "for the rest\n")
    assert done % 10 == 0  # whole chunks, then nothing more
    assert 50 <= done < 20_000

    again = subprocess.run([*base, "run", "SAACT", "--chunk-size", "500", "--json"], env=ENV,
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["examined"] == 20_000 - done
    assert count_moved() == 20_000
    assert lock_file.read_text("utf-8") == ""  # a new lock file, emptied at the end
    engine.dispose()


def test_step_1_4_sigterm_ends_resend_errors_after_the_transaction_under_way(
        tmp_path: Path) -> None:
    """``ccb sync resend-errors`` after a wave of 10,000 rejections, stopped by SIGTERM: whole
    chunks of 500 queued again, the rest still in ERROR, exit 3; the next one does the rest."""
    url = f"sqlite:///{tmp_path / 'ccb.db'}"
    today = dt.date(2025, 3, 3)
    open_production_store(url, today).dispose()
    engine = create_engine(url)
    populate(engine, 10_000, 0, today)
    outbox = open_outbox(url, load_admin_config(), FixedClock(today))
    try:
        load_jobs().run("SAACT", JobContext(
            admin=outbox.admin, clock=FixedClock(today), store=outbox.store,
            queries=SqlBatchQueries(outbox.store.engine)))
        now = FixedClock(today).now()
        reject(outbox, send_pending(outbox, now), now)
    finally:
        outbox.store.dispose()
    in_error = text("SELECT count(*) FROM ccb_sync_requests WHERE state = 'ERROR'")

    def count_in_error() -> int:
        with engine.connect() as connection:
            return int(connection.execute(in_error).scalar_one())

    wave = count_in_error()
    assert wave >= 10_000
    argv = [sys.executable, "-m", "sync.cli", "--ccb-db-url", url, "--business-date",
            today.isoformat(), "ccb", "sync", "resend-errors", "--json"]
    code, out, err = _stopped_midway(argv, lambda: count_in_error() <= wave - 500)

    report = json.loads(out)
    assert code == 3, err
    assert "SIGTERM: stopping" in err
    assert report["stopped"] is True
    assert report["examined"] % 500 == 0  # whole transactions of 500
    assert 500 <= report["examined"] < wave
    assert count_in_error() == wave - report["examined"]
    again = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["examined"], count_in_error()) == (
        wave - report["examined"], 0)
    engine.dispose()


def _due_sas(tmp_path: Path) -> tuple[Engine, Callable[[], int], list[str]]:
    """A SQLite file with the production schema and 20,000 SAs due on 2025-03-03: its engine,
    how many SAs have moved on, and ``c2m-sync batch`` on it and that date."""
    url = f"sqlite:///{tmp_path / 'ccb.db'}"
    today = dt.date(2025, 3, 3)
    open_production_store(url, today).dispose()  # the production schema
    engine = create_engine(url)
    populate(engine, 20_000, 0, today)
    moved = text("SELECT count(*) FROM ccb_service_agreements WHERE status IN ('20', '40')")

    def count_moved() -> int:
        with engine.connect() as connection:
            return int(connection.execute(moved).scalar_one())

    return engine, count_moved, [sys.executable, "-m", "sync.cli", "--ccb-db-url", url,
                                 "--business-date", today.isoformat(), "batch"]


@contextmanager
def _under_way(argv: list[str], progressed: Callable[[], bool]
               ) -> Iterator[subprocess.Popen[str]]:
    """``argv`` started, once ``progressed()`` holds (it must still be running then); killed
    at the end of the block if it is still running."""
    run = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 120
        while not progressed() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.poll() is None, "it ended before the test could act while it ran"
        yield run
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def _stopped_midway(argv: list[str], progressed: Callable[[], bool]) -> tuple[int, str, str]:
    """Run ``argv``, send it SIGTERM once ``progressed()`` holds; its exit code and output."""
    with _under_way(argv, progressed) as run:
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=120)
    return run.returncode, out, err
