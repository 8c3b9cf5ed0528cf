"""``c2m-sync ccb sync ...``: the sync requests of the outbox (list, show, resend,
resend-errors).

``resend-errors`` queues every request in ``ERROR`` again (only those with an error of
``--code``, or of ``--entity-type``, when given), 500 per transaction, once the cause of a wave
of rejections is fixed. A request whose entity still cannot be snapshotted stays in ``ERROR``
and is listed; the command then exits 1 (the others are queued all the same). SIGTERM or
Ctrl-C ends it after the transaction under way: what it reports is queued, the report says it
stopped, and it exits 3. On a terminal a progress bar is drawn on stderr, never under
``--json``."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console

from sync.ccb.sync_requests import SyncRequest, SyncRequestState
from sync.cli.ccb_views import Subparsers
from sync.cli.common import CliError, Context, Handler, whole_number
from sync.cli.progress import BarProgress, progress_wanted
from sync.cli.stopping import STOPPED_EXIT_CODE, stopped_by_signals
from sync.mapping.messages import EntityType
from sync.pipeline.stores import open_outbox
from sync.storage.outbox import ResendReport, SqlOutbox

CommandFactory = Callable[..., argparse.ArgumentParser]


def register(sub: Subparsers, command: CommandFactory) -> None:
    sync = sub.add_parser("sync", help="sync requests: list, show, resend, resend-errors")
    requests = sync.add_subparsers(dest="sync_command", required=True, metavar="COMMAND")
    listing = command(requests, "list", "sync requests, newest first", _list, with_user=False)
    listing.add_argument("--state", choices=[state.value for state in SyncRequestState])
    listing.add_argument("--entity", help="entity id (SA, person)")
    listing.add_argument("--limit", type=whole_number("count", 0), default=50,
                         help="at most this many requests (default 50)")
    show = command(requests, "show", "one sync request with its snapshot and errors", _show,
                   with_user=False)
    show.add_argument("request_id")
    resend = command(requests, "resend",
                     "send a request in ERROR again, with the entity's current data", _resend,
                     with_user=False)
    resend.add_argument("request_id")
    every = command(requests, "resend-errors",
                    "send every request in ERROR again (after the cause was fixed)",
                    _resend_errors, with_user=False)
    every.add_argument("--code", help="only requests with an error of this code, e.g. "
                                      "D2-USSPDTVAL")
    every.add_argument("--entity-type", choices=[kind.value for kind in EntityType],
                       help="only requests of this entity type")


def _with_outbox(context: Context, action: Callable[[SqlOutbox], Any]) -> Any:
    outbox = open_outbox(context.settings.ccb_db_url, context.admin, context.clock)
    try:
        return action(outbox)
    finally:
        outbox.store.dispose()


def as_json(request: SyncRequest, with_snapshot: bool = False) -> dict[str, Any]:
    document = request.model_dump(mode="json", exclude={"payload"})
    if with_snapshot:
        document["snapshot"] = json.loads(request.payload)
    return document


def _list(context: Context, args: argparse.Namespace) -> int:
    state = SyncRequestState(args.state) if args.state else None
    found: list[SyncRequest] = _with_outbox(context, lambda outbox: outbox.find(
        state=state, entity_id=args.entity, limit=args.limit, newest_first=True))
    context.emit([as_json(request) for request in found], lambda: context.table(
        "Sync requests", ["id", "entity", "state", "version", "updated", "errors"],
        [(r.id, r.key, r.state.value, r.version, r.updated_at.isoformat(timespec="seconds"),
          "; ".join(str(error) for error in r.errors)) for r in found]))
    return 0


def _show(context: Context, args: argparse.Namespace) -> int:
    request: SyncRequest | None = _with_outbox(context, lambda outbox: outbox.get(
        args.request_id))
    if request is None:
        raise CliError(f"sync request {args.request_id!r} not found")

    def human() -> None:
        context.table(f"Sync request {request.id}", ["field", "value"], [
            ("entity", request.key), ("state", request.state.value),
            ("version", request.version), ("created", request.created_at.isoformat()),
            ("sent", request.sent_at.isoformat() if request.sent_at else None),
            ("partition/offset", None if request.partition is None
             else f"{request.partition}/{request.offset}"),
            ("acknowledged", request.acknowledged_at.isoformat()
             if request.acknowledged_at else None),
            ("MDM US", request.mdm_us_id), ("retries", request.retries),
            ("note", request.note)])
        for error in request.errors:
            context.stdout.print(f"  [red]{error}[/red]")
        context.stdout.print_json(request.payload.decode("utf-8"))

    context.emit(as_json(request, with_snapshot=True), human)
    return 0


def _resend(context: Context, args: argparse.Namespace) -> int:
    now = context.clock.now()
    request: SyncRequest = _with_outbox(context, lambda outbox: outbox.resend(
        args.request_id, now))
    context.emit(as_json(request), lambda: print(
        f"sync request {request.id} ({request.key}) queued again as version {request.version}"))
    return 0


def _resend_errors(context: Context, args: argparse.Namespace) -> int:
    now = context.clock.now()
    stop = threading.Event()

    def run(outbox: SqlOutbox) -> ResendReport:
        with stopped_by_signals(stop):
            if not progress_wanted(context):
                return outbox.resend_errors(now, code=args.code, entity_type=args.entity_type,
                                            stop=stop.is_set)
            with BarProgress(Console(stderr=True)) as bar:
                bar.start("requests in ERROR", outbox.counts()[SyncRequestState.ERROR.value])
                return outbox.resend_errors(now, code=args.code, entity_type=args.entity_type,
                                            progress=bar.advance, stop=stop.is_set)

    report: ResendReport = _with_outbox(context, run)

    def human() -> None:
        print(f"{len(report.resent):,} of {report.examined:,} requests in ERROR queued again"
              + (f" ({report.carried_by_pending:,} by their entity's pending request)"
                 if report.carried_by_pending else "")
              + (" - stopped on request before the end (resend again for the rest)"
                 if report.stopped else ""))
        for request_id, reason in report.failed:
            context.stdout.print(f"  [red]{request_id} left in ERROR: {reason}[/red]")

    context.emit({"examined": report.examined, "resent": report.resent,
                  "carried_by_pending": report.carried_by_pending,
                  "failed": [{"request_id": request_id, "reason": reason}
                             for request_id, reason in report.failed],
                  "stopped": report.stopped}, human)
    if report.failed:
        return 1
    return STOPPED_EXIT_CODE if report.stopped else 0


_HANDLERS: tuple[Handler, ...] = (_list, _show, _resend, _resend_errors)
