"""Step 1.1 raced: two operating-system processes run ``c2m-sync ccb request-stop`` on the same
SA at the same instant, with different stop dates, on PostgreSQL and on SQLite.

Exactly one wins. The other exits 1 with one clear line: the SA changed concurrently (retry),
or, when it read the winner's committed state, the SA is already a pending stop. The SA holds
the winner's stop date, and the sync outbox holds one new request for it, carrying that date:
the loser left nothing behind, no version was spent on it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import multiprocessing
import re
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest

from sync.ccb.model import SaStatus
from sync.ccb.sync_requests import SyncRequestState
from sync.clock import FixedClock
from sync.pipeline.stores import open_outbox
from sync.storage.outbox import SqlOutbox
from tests.faults.support import BUSINESS_DATE, load_tenants
from tests.integration.pipeline_support import ADMIN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPETITIONS = 4
DATES = (dt.date(2025, 3, 14), dt.date(2025, 3, 21))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ccb_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def outbox(ccb_url: str) -> Iterator[SqlOutbox]:
    opened = open_outbox(ccb_url, ADMIN, FixedClock(BUSINESS_DATE))
    load_tenants(opened, ADMIN, REPETITIONS)
    yield opened
    opened.store.dispose()


def request_stop(url: str, sa_number: int, stop_date: str, start: Barrier,
                 answers: Any) -> None:
    """One clerk's process: the CLI, entered once both processes are ready."""
    from sync.cli import main

    argv = ["--ccb-db-url", url, "--business-date", BUSINESS_DATE.isoformat(), "ccb",
            "request-stop", f"A-T{sa_number:04d}", "--sa", f"SA-T{sa_number:04d}",
            "--stop-date", stop_date, "--json"]
    out, err = io.StringIO(), io.StringIO()
    start.wait(60)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    answers.put((stop_date, code, out.getvalue(), err.getvalue()))


def race(url: str, sa_number: int) -> list[tuple[str, int, str, str]]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    answers = context.Queue()
    clerks = [context.Process(target=request_stop,
                              args=(url, sa_number, day.isoformat(), start, answers))
              for day in DATES]
    for clerk in clerks:
        clerk.start()
    try:
        results = [answers.get(timeout=120) for _ in clerks]
    finally:
        for clerk in clerks:
            clerk.join(30)
            if clerk.is_alive():
                clerk.kill()
    assert [clerk.exitcode for clerk in clerks] == [0, 0]
    return results


def test_step_1_1_two_processes_request_stop_of_one_sa_one_wins_the_other_is_told(
        outbox: SqlOutbox, ccb_url: str) -> None:
    losers: list[str] = []
    for n in range(REPETITIONS):
        sa_id = f"SA-T{n:04d}"
        before = outbox.find(entity_type="SA", entity_id=sa_id)
        results = race(ccb_url, n)
        winners = [r for r in results if r[1] == 0]
        assert len(winners) == 1, results
        [(won_date, _, won_out, _)] = winners
        [(_, lost_code, lost_out, lost_err)] = [r for r in results if r[1] != 0]
        assert lost_code == 1
        assert lost_out == ""
        assert re.fullmatch(
            rf"error: SA '{sa_id}'"
            r"(: version: changed concurrently \(version \d+ read\); retry the command"
            r"| in status 30 \(pending stop\) cannot request stop)\n", lost_err), lost_err
        losers.append(lost_err)
        assert json.loads(won_out)  # the winner reported what it did

        sa = outbox.store.read(lambda view, s=sa_id: view.sa(s))
        assert sa is not None
        assert (sa.status, sa.end_date) == (SaStatus.PENDING_STOP,
                                            dt.date.fromisoformat(won_date))
        after = outbox.find(entity_type="SA", entity_id=sa_id)
        new = [r for r in after if r not in before]
        assert len(new) == 1, new
        [request] = new
        assert request.state is SyncRequestState.PENDING
        assert request.version == max(r.version for r in before) + 1
        snapshot = json.loads(request.payload)
        assert (snapshot["saStatus"], snapshot["endDate"]) == ("30", won_date)
    assert len(losers) == REPETITIONS
