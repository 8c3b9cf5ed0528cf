"""The chunked runner (one bad item reported, the rest applied), the registry and the
schedule loop."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from sync.batches import (
    BatchReport,
    BatchUsageError,
    JobContext,
    JobRegistry,
    load_jobs,
    takes_file,
)
from sync.batches.ccb_jobs import SelectionJob
from sync.batches.memory import MemoryBatchQueries
from sync.batches.schedule import parse_period, run_every
from sync.ccb.batches import activate_or_stop
from sync.ccb.model import SaSpLink, SaStatus, ServiceAgreement
from sync.clock import FixedClock
from tests.unit.ccb.batches.support import run_batch
from tests.unit.ccb.world import NEW_TENANT, SP_W, World, day, no_fieldwork_admin


def _pending_starts(world: World, count: int, bad: set[int]) -> list[str]:
    """``count`` due pending starts of the new tenant; those in ``bad`` name an SA type the
    admin data does not know (bad data a conversion left behind)."""
    ids = []
    for number in range(count):
        sa_id = f"SA-P{number:02d}"
        ids.append(sa_id)
        world.store.add(
            ServiceAgreement(id=sa_id, account_id=NEW_TENANT,
                             sa_type="BOGUS" if number in bad else "E-SURGE",
                             status=SaStatus.PENDING_START, start_date=day(0)),
            SaSpLink(id=f"L-{sa_id}", sa_id=sa_id, sp_id=SP_W, start_date=day(0)))
    return ids


@pytest.mark.parametrize("chunk_size", [1, 4, 500])
def test_step_5_9_one_bad_sa_in_a_chunk_is_reported_and_the_others_applied(
        chunk_size: int) -> None:
    world = World(no_fieldwork_admin())
    ids = _pending_starts(world, 10, bad={5})

    report = run_batch(world, "SAACT", day(0), chunk_size=chunk_size)

    statuses = {sa_id: world.sa(sa_id).status for sa_id in ids}
    assert statuses.pop("SA-P05") is SaStatus.PENDING_START
    assert set(statuses.values()) == {SaStatus.ACTIVE}
    assert [(e.entity, e.entity_id) for e in report.errors] == [("SA", "SA-P05")]
    assert report.errors[0].line() == ("SA SA-P05: SA 'SA-P05': sa_type: unknown SA type"
                                       " 'BOGUS' (not in the admin data sa_types)")
    assert (report.examined, report.changed) == (10, 9)
    assert not report.nothing_to_do


def test_registry_refuses_unknown_codes_and_duplicate_registrations() -> None:
    registry = load_jobs()
    assert [job.code for job in registry.all()][:7] == [
        "SAACT", "PSASPM", "TD-SSFTL", "FANRMRCO", "FACOMPL", "TD-CCCB",
        "STOPUPL"]
    with pytest.raises(BatchUsageError, match=r"unknown batch 'NOPE' \(known: SAACT, "):
        registry.get("NOPE")
    other = JobRegistry()
    job = registry.get("SAACT")
    other.register(job)
    other.register(job)  # the same job again is harmless
    with pytest.raises(ValueError, match="already registered"):
        other.register(SelectionJob("SAACT", "another SAACT", "SA",
                                    lambda c: c.queries.due_pending_sas(c.date()),
                                    activate_or_stop))


def test_a_job_is_one_small_registration() -> None:
    """What the sync jobs will do: a class with code, description and run()."""

    class Hello:
        code = "HELLO"
        description = "say hello"

        def run(self, context: JobContext) -> BatchReport:
            return BatchReport(self.code, context.date(), examined=1)

    registry = JobRegistry()
    registry.register(Hello())
    world = World()
    context = JobContext(admin=world.admin, clock=FixedClock(day(0)), store=world.store,
                         queries=MemoryBatchQueries(world.store), business_date=day(7))
    report = registry.run("HELLO", context)
    assert (report.code, report.business_date, report.examined) == ("HELLO", day(7), 1)
    assert report.seconds >= 0


def test_only_the_upload_jobs_take_a_file_and_a_file_given_to_another_is_refused(
        tmp_path: Path) -> None:
    registry = load_jobs()
    assert [job.code for job in registry.all() if takes_file(job)] == ["FACOMPL", "STOPUPL"]
    assert registry.check_file("FACOMPL", True).code == "FACOMPL"
    assert registry.check_file("SAACT", False).code == "SAACT"
    with pytest.raises(BatchUsageError,
                       match=r"^batch SAACT takes no --file \(only FACOMPL, STOPUPL\)$"):
        registry.check_file("SAACT", True)
    # Whatever the entry point, the run itself refuses it before selecting anything.
    world = World(no_fieldwork_admin())
    _pending_starts(world, 1, bad=set())
    upload = tmp_path / "rows.csv"
    upload.write_text("fa_id,completed_at,read_value\n", "utf-8")
    with pytest.raises(BatchUsageError, match="batch SAACT takes no --file"):
        run_batch(world, "SAACT", day(0), file=upload)
    assert world.sa("SA-P00").status is SaStatus.PENDING_START


def test_the_run_date_overrides_the_clock() -> None:
    world = World(no_fieldwork_admin())
    _pending_starts(world, 1, bad=set())
    context = JobContext(admin=world.admin, clock=FixedClock(day(-10)), store=world.store,
                         queries=MemoryBatchQueries(world.store), business_date=day(0))
    report = load_jobs().run("SAACT", context)
    assert (report.business_date, report.changed) == (day(0), 1)


class _StopAfter:
    """Progress that asks the run to stop once ``chunks`` chunks are done."""

    def __init__(self, stop: threading.Event, chunks: int) -> None:
        self.stop, self.chunks, self.advanced = stop, chunks, 0

    def start(self, description: str, total: int | None) -> None:
        self.total = total

    def advance(self, count: int) -> None:
        self.advanced += 1
        if self.advanced == self.chunks:
            self.stop.set()


def test_step_5_9_a_run_asked_to_stop_ends_between_chunks_and_the_next_does_the_rest() -> None:
    world = World(no_fieldwork_admin())
    ids = _pending_starts(world, 10, bad=set())
    stop = threading.Event()
    context = JobContext(admin=world.admin, clock=FixedClock(day(0)), store=world.store,
                         queries=MemoryBatchQueries(world.store), chunk_size=3,
                         progress=_StopAfter(stop, chunks=2), stop=stop)

    first = load_jobs().run("SAACT", context)

    # Two whole chunks applied, nothing of the third begun.
    assert (first.stopped, first.examined, first.changed) == (True, 6, 6)
    assert [world.sa(sa_id).status for sa_id in ids] == \
        [SaStatus.ACTIVE] * 6 + [SaStatus.PENDING_START] * 4
    assert first.summary().endswith("stopped on request before the end (run it again for "
                                     "the rest)")
    assert first.to_dict()["stopped"] is True
    second = run_batch(world, "SAACT", day(0), chunk_size=3)
    assert (second.stopped, second.examined, second.changed) == (False, 4, 4)
    assert {world.sa(sa_id).status for sa_id in ids} == {SaStatus.ACTIVE}


def test_step_5_9_a_run_asked_to_stop_before_it_begins_changes_nothing() -> None:
    world = World(no_fieldwork_admin())
    ids = _pending_starts(world, 3, bad=set())
    stop = threading.Event()
    stop.set()
    context = JobContext(admin=world.admin, clock=FixedClock(day(0)), store=world.store,
                         queries=MemoryBatchQueries(world.store), stop=stop)
    report = load_jobs().run("SAACT", context)
    assert (report.stopped, report.examined) == (True, 0)
    assert {world.sa(sa_id).status for sa_id in ids} == {SaStatus.PENDING_START}


# --- schedule --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600),
                                                ("1d", 86400), ("0.5m", 30)])
def test_parse_period(text: str, seconds: float) -> None:
    assert parse_period(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["15", "m", "-1m", "0s", "1w", ""])
def test_parse_period_refuses_what_is_not_a_period(text: str) -> None:
    with pytest.raises(ValueError, match="period"):
        parse_period(text)


def test_schedule_runs_each_period_until_max_runs() -> None:
    clock = [0.0]
    rounds: list[tuple[int, float]] = []

    class Stop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            clock[0] += timeout or 0.0
            return False

    def one_round(number: int) -> None:
        rounds.append((number, clock[0]))
        clock[0] += 2.0  # each round takes 2 seconds

    count = run_every(dt.timedelta(seconds=10), one_round, Stop(), max_runs=3,
                      monotonic=lambda: clock[0])
    assert count == 3
    assert rounds == [(1, 0.0), (2, 10.0), (3, 20.0)]  # fixed rate, not 12 s apart


def test_schedule_stops_when_asked_and_never_overlaps_a_slow_round() -> None:
    stop = threading.Event()
    clock = [0.0]
    rounds: list[float] = []

    def one_round(number: int) -> None:
        rounds.append(clock[0])
        clock[0] += 25.0  # longer than the period: the next round starts at once
        if number == 3:
            stop.set()  # SIGTERM arrives during the third round

    count = run_every(dt.timedelta(seconds=10), one_round, stop, monotonic=lambda: clock[0])
    assert count == 3
    assert rounds == [0.0, 25.0, 50.0]
