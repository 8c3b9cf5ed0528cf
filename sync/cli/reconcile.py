"""``c2m-sync reconcile`` and ``c2m-sync replay``: compare CCB, the sync topic and MDM; rebuild
an MDM store from the topic (SPEC.md section 7, docs/reconcile.md).

``reconcile`` exits 0 when CCB, the topic and MDM agree, 1 on drift (also after ``--repair``:
the repair is queued, not yet carried), 2 when it could not reconcile (bad option or settings,
broker unreachable, topic missing). ``replay`` exits 0 once the store is rebuilt, 2 when it
refused or could not start (a store that is not empty, no topic).

Both read the topic with a throwaway consumer on the configured broker. The in-process bus
(``memory://``) lives inside one process, so from the command line it holds no topic: both
commands say so and stop; in one process (the demo) call :mod:`sync.reconcile.run` and
:mod:`sync.reconcile.mdm_replay` directly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeAlias, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Console

from sync.cli.common import CliError, Context, add_json_flag, run_on_bus
from sync.cli.progress import BarProgress
from sync.pipeline.stores import open_mdm_store, open_outbox
from sync.reconcile.compare import Drift
from sync.reconcile.mdm_replay import ReplayTargetNotEmptyError, replay_into_mdm, require_empty
from sync.reconcile.replay import ProgressCallback, ReplayError
from sync.reconcile.report import ReconcileReport
from sync.reconcile.run import reconcile, repair
from sync.transport.bus import Bus, BusError
from sync.worker.mdm_processor import StoreUnavailableError

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
T = TypeVar("T")

USAGE_ERROR = 2
MEMORY_BUS = ("the in-process bus (memory://) lives inside one process: from the command line "
              "it holds no sync topic to replay. Use --broker kafka://HOST:PORT, or call "
              "sync.reconcile.run.reconcile / sync.reconcile.mdm_replay.replay_into_mdm in the "
              "process that runs the pipeline (as the demo does)")


def register(commands: Subparsers) -> None:
    parser = commands.add_parser(
        "reconcile", help="compare CCB, the sync topic and MDM; exit 1 on drift",
        description="Replay the sync topic (bounded, without a consumer group) and compare "
                    "CCB's SAs, the topic's latest message per SA and MDM's usage "
                    "subscriptions. Exit 0 when they agree, 1 on drift, 2 when it could not "
                    "reconcile.")
    parser.add_argument("--since", metavar="TS",
                        help="replay from this time (ISO date or date-time; without a zone, "
                             "the base time zone) instead of the beginning")
    parser.add_argument("--repair", action="store_true",
                        help="queue a fresh sync request for every drifted SA CCB can resend")
    add_json_flag(parser)
    parser.set_defaults(handler=_reconcile)

    replay = commands.add_parser(
        "replay", help="rebuild an empty MDM store from the sync topic alone",
        description="Apply every record of the sync topic to an empty MDM store through the "
                    "MDM worker's own processing, recording the consumed positions.")
    replay.add_argument("--mdm-db", required=True, metavar="URL",
                        help="the empty MDM database to rebuild (a store that holds rows is "
                             "refused)")
    replay.add_argument("--since", metavar="TS", help="replay from this time (as reconcile)")
    replay.add_argument("--mark-answers-published", action="store_true",
                        help="mark the rebuilt store's acknowledgements and dead letters as "
                             "published (default: a worker started on it publishes them)")
    add_json_flag(replay)
    replay.set_defaults(handler=_replay)


# --- shared ------------------------------------------------------------------------------------


def parse_since(text: str | None, time_zone: str) -> dt.datetime | None:
    """``--since``: an ISO date or date-time; a date or a time without a zone is in
    ``time_zone``."""
    if text is None:
        return None
    try:
        found = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--since: invalid time {text!r} (expected an ISO date or date-time, "
                       "e.g. 2025-03-03 or 2025-03-03T08:00:00+00:00)", USAGE_ERROR) from None
    return found if found.tzinfo is not None else found.replace(tzinfo=ZoneInfo(time_zone))


def _require_shared_bus(context: Context) -> None:
    """Refuse the in-process bus before any store is opened."""
    if context.settings.broker_url.startswith("memory://"):
        raise CliError(MEMORY_BUS, USAGE_ERROR)


def _on_bus(context: Context, work: Callable[[Bus], Awaitable[T]]) -> T:
    """Run ``work`` on a started bus; transport failures become one-line errors."""
    url = context.settings.broker_url
    try:
        return run_on_bus(context.settings, work)
    except (BusError, ReplayError) as error:
        raise CliError(f"{url}: {error}", USAGE_ERROR) from None
    except StoreUnavailableError as error:
        raise CliError(str(error)) from None


@contextmanager
def _progress(context: Context, description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on stderr, only on a terminal and never under ``--json``."""
    if context.json_output or not sys.stderr.isatty():
        yield None
        return
    with BarProgress(Console(stderr=True)) as bar:
        shown = 0
        started = False

        def update(done: int, total: int) -> None:
            nonlocal shown, started
            if not started:
                bar.start(description, total)
                started = True
            bar.advance(done - shown)
            shown = done

        yield update


# --- reconcile ---------------------------------------------------------------------------------


def _reconcile(context: Context, args: argparse.Namespace) -> int:
    settings, admin = context.settings, context.admin
    since = parse_since(args.since, admin.installation.base_time_zone)
    _require_shared_bus(context)
    outbox = open_outbox(settings.ccb_db_url, admin, context.clock)
    mdm = open_mdm_store(settings.mdm_db_url, admin)
    try:
        with _progress(context, f"replaying {settings.topics.sync_requests}") as progress:
            report = _on_bus(context, lambda bus: reconcile(
                outbox, mdm, bus, settings.topics.sync_requests, admin, since=since,
                progress=progress))
        if args.repair and not report.agree:
            repair(outbox, report, context.clock.now())
    finally:
        outbox.store.dispose()
        mdm.dispose()
    context.emit(report.to_dict(), lambda: _print_report(context, report))
    return 0 if report.agree else 1


def _print_report(context: Context, report: ReconcileReport) -> None:
    replay = report.replay
    print(f"replayed {replay.records} records of {report.topic} "
          f"({len(replay.messages)} keys, {len(replay.problems)} unreadable)"
          + ("" if report.since is None else f" since {report.since.isoformat()}"))
    for problem in replay.problems:
        print(f"  unreadable: {report.topic}[{problem.partition}] offset {problem.offset} "
              f"key {problem.key}: {problem.reason}")
    if report.drifts:
        context.table("Drift", ["entity", "kind", "field", "CCB", "MDM / topic", "detail"],
                      [_row(drift) for drift in report.drifts])
        context.table("Per entity", ["entity", "kinds", "repair", "newest sync request"],
                      [(e.entity_id, ", ".join(e.kinds), e.repair.value, e.sync_request or "-")
                       for e in report.entities()])
        print("counts: " + ", ".join(f"{kind} {count}"
                                     for kind, count in report.counts().items() if count))
    print(report.summary())
    if report.repair is not None:
        print(report.repair.summary())
        if report.repair.requeued:
            print("the relay publishes them; reconcile again once the pipeline has run")
    elif not report.agree:
        print("run again with --repair to queue fresh sync requests for the drifted SAs")


def _row(drift: Drift) -> tuple[str, ...]:
    def shown(value: object) -> str:
        return "-" if value is None else str(value)

    return (drift.entity_id, drift.kind.value, drift.field or "-", shown(drift.ccb_value),
            shown(drift.mdm_value), drift.message)


# --- replay ------------------------------------------------------------------------------------


def _replay(context: Context, args: argparse.Namespace) -> int:
    settings, admin = context.settings, context.admin
    since = parse_since(args.since, admin.installation.base_time_zone)
    _require_shared_bus(context)
    store = open_mdm_store(args.mdm_db, admin)
    try:
        require_empty(store)  # before the broker is contacted
        with _progress(context, f"replaying {settings.topics.sync_requests}") as progress:
            report = _on_bus(context, lambda bus: replay_into_mdm(
                bus, settings.topics.sync_requests, store, context.clock, since=since,
                progress=progress, mark_answers_published=args.mark_answers_published))
    except ReplayTargetNotEmptyError as error:
        raise CliError(f"{args.mdm_db}: {error}", USAGE_ERROR) from None
    finally:
        store.dispose()
    context.emit(report.to_dict(), lambda: print(report.summary()))
    return 0
