"""``c2m-sync batch list|run|schedule``: the CCB batch processes (SPEC.md section 4).

``run CODE`` runs one job against the CCB store (``--ccb-db-url``) and prints its report: counts
of items examined, changed and To Dos raised, and one line per item it could not process.
``--date D`` runs it as of business date D (the same as ``--business-date``). A run with item
errors exits 1 (the other items are applied); a run that cannot start (unknown code, missing
``--file``, a ``--file`` given to a job that takes none) prints one line and exits 1. SIGTERM or
Ctrl-C ends the run after the unit of work under way: its report says it stopped, and it exits 3
(:data:`STOPPED_EXIT_CODE`). A job already running over the same database (another
``batch run``, a schedule, the API) holds its lock (:mod:`sync.batches.run_locks`): ``run`` then
prints who holds it and exits 4 (:data:`BUSY_EXIT_CODE`) without running; a schedule skips the
job for that round. A run whose lock goes while it runs (its PostgreSQL session ended, its lock
file removed) stops before its next unit of work and exits 5 (:data:`LOCK_LOST_EXIT_CODE`): what
it did is committed, and a run again does the rest. On a terminal a progress bar is drawn on
stderr; never under ``--json`` or when stderr is not a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import TypeAlias

from rich.console import Console

from sync.batches import (
    BatchBusyError,
    BatchLockLostError,
    BatchReport,
    BatchUsageError,
    JobContext,
    NoProgress,
    Progress,
    load_jobs,
)
from sync.batches.schedule import parse_period, run_every
from sync.ccb.errors import CcbError
from sync.cli.ccb import open_store
from sync.cli.common import CliError, Context, add_json_flag, parse_date, whole_number
from sync.cli.progress import BarProgress, progress_wanted
from sync.cli.stopping import STOPPED_EXIT_CODE, stopped_by_signals
from sync.storage.ccb import CcbStoreError, SqlCcbStore
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.run_locks import run_locks_for

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# Another run of the job holds its lock: nothing was run; try again once it has ended.
BUSY_EXIT_CODE = 4
# The run's lock went while it ran: it stopped there so that no second run works beside it.
LOCK_LOST_EXIT_CODE = 5


def _job_context(context: Context, args: argparse.Namespace, progress: Progress,
                 stop: threading.Event) -> tuple[JobContext, SqlCcbStore]:
    store = open_store(context)
    job_context = JobContext(admin=context.admin, clock=context.clock, store=store,
                             queries=SqlBatchQueries(store.engine), settings=context.settings,
                             file=getattr(args, "file", None), chunk_size=args.chunk_size,
                             progress=progress, stop=stop, locks=run_locks_for(store.engine))
    return job_context, store


def _run_job(context: Context, args: argparse.Namespace, code: str,
             stop: threading.Event) -> BatchReport:
    registry = load_jobs()
    # An unknown code, or a --file the job would ignore, fails before the store is opened.
    registry.check_file(code, getattr(args, "file", None) is not None)
    if progress_wanted(context):
        with BarProgress(Console(stderr=True)) as bar:
            return _run_with(context, args, code, bar, stop)
    return _run_with(context, args, code, NoProgress(), stop)


def _run_with(context: Context, args: argparse.Namespace, code: str,
              progress: Progress, stop: threading.Event) -> BatchReport:
    job_context, store = _job_context(context, args, progress, stop)
    try:
        return load_jobs().run(code, job_context)
    finally:
        store.dispose()


def _print_report(context: Context, report: BatchReport, json_lines: bool = False) -> None:
    if context.json_output:
        print(json.dumps(report.to_dict(), indent=None if json_lines else 2))
        return
    print(report.summary())
    for error in report.errors:
        print(f"  error: {error.line()}")


def _run(context: Context, args: argparse.Namespace) -> int:
    if args.date is not None:
        # "--date D" is this run's business date; the store's clock follows it too.
        context.args.business_date = args.date
    stop = threading.Event()
    try:
        with stopped_by_signals(stop):
            report = _run_job(context, args, args.code, stop)
    except BatchBusyError as error:
        raise CliError(str(error), BUSY_EXIT_CODE) from None
    except BatchLockLostError as error:
        raise CliError(str(error), LOCK_LOST_EXIT_CODE) from None
    except (BatchUsageError, CcbError, CcbStoreError) as error:
        raise CliError(str(error)) from None
    _print_report(context, report)
    if report.errors:
        return 1
    return STOPPED_EXIT_CODE if report.stopped else 0


def _list(context: Context, args: argparse.Namespace) -> int:
    registry = load_jobs()
    rows = [{"code": job.code, "description": job.description} for job in registry.all()]
    context.emit(rows, lambda: context.table("Batch jobs", ["code", "description"],
                                             [[row["code"], row["description"]]
                                              for row in rows]))
    return 0


def _schedule(context: Context, args: argparse.Namespace) -> int:
    try:
        period = parse_period(args.every)
    except ValueError as error:
        raise CliError(str(error)) from None
    registry = load_jobs()
    try:  # each round would refuse the same way: say so once, before the first
        for code in args.codes:
            registry.check_file(code, args.file is not None)
    except BatchUsageError as error:
        raise CliError(str(error)) from None
    stop = threading.Event()
    failures = 0

    def one_round(number: int) -> None:
        nonlocal failures
        for code in args.codes:
            if stop.is_set():
                return  # the loop ends: the round's other jobs wait for the next start
            try:
                report = _run_job(context, args, code, stop)
            except BatchBusyError as error:
                # Not this schedule's failure: the job is being done; the next round runs it.
                print(f"skipped: {error}", file=sys.stderr)
                continue
            except (BatchUsageError, BatchLockLostError, CcbError, CcbStoreError) as error:
                failures += 1
                print(f"error: {code}: {error}", file=sys.stderr)
                continue
            failures += 1 if report.errors else 0
            _print_report(context, report, json_lines=True)
            sys.stdout.flush()

    with stopped_by_signals(stop):
        run_every(period, one_round, stop, max_runs=args.max_runs)
    return 1 if failures else 0


_chunk_size = whole_number("chunk size", 1, 5000)


def register(commands: Subparsers) -> None:
    batch = commands.add_parser("batch", help="CCB batch processes: list, run, schedule")
    sub = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="the batch jobs and what they do")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)

    run = sub.add_parser("run", help="run one batch job now",
                         description="Run one batch job and print its report.")
    run.add_argument("code", help="batch code (see 'batch list')")
    run.add_argument("--date", type=parse_date,
                     help="business date of this run, YYYY-MM-DD (default: the clock's)")
    run.add_argument("--file", type=Path,
                     help="upload file, CSV or JSON (FACOMPL, STOPUPL; refused by the others)")
    run.add_argument("--chunk-size", type=_chunk_size, default=500,
                     help="items per unit of work (default 500)")
    add_json_flag(run)
    run.set_defaults(handler=_run, own_process_tuning=True)

    schedule = sub.add_parser(
        "schedule", help="run batch jobs every period until stopped (SIGTERM, Ctrl-C)",
        description="Run the jobs one after the other every period; stops after --max-runs "
                    "rounds or on SIGTERM / Ctrl-C (a job under way ends after its unit of work). "
                    "Under --json each report is one JSON line.")
    schedule.add_argument("codes", nargs="+", metavar="CODE")
    schedule.add_argument("--every", required=True, help="period: 30s, 15m, 1h, 1d")
    schedule.add_argument("--max-runs", type=whole_number("count", 1),
                          help="stop after this many rounds (at least 1)")
    schedule.add_argument("--file", type=Path,
                          help="upload file (FACOMPL, STOPUPL; every CODE must take one)")
    schedule.add_argument("--chunk-size", type=_chunk_size, default=500)
    add_json_flag(schedule)
    schedule.set_defaults(handler=_schedule, own_process_tuning=True)
