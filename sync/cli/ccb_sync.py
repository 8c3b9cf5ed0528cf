"""``c2m-sync ccb sync ...``: the sync requests of the outbox (list, show, resend)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from sync.ccb.sync_requests import SyncRequest, SyncRequestState
from sync.cli.ccb_views import Subparsers
from sync.cli.common import CliError, Context, Handler
from sync.pipeline.stores import open_outbox
from sync.storage.outbox import SqlOutbox

CommandFactory = Callable[..., argparse.ArgumentParser]


def register(sub: Subparsers, command: CommandFactory) -> None:
    sync = sub.add_parser("sync", help="sync requests: list, show, resend")
    requests = sync.add_subparsers(dest="sync_command", required=True, metavar="COMMAND")
    listing = command(requests, "list", "sync requests, newest first", _list, with_user=False)
    listing.add_argument("--state", choices=[state.value for state in SyncRequestState])
    listing.add_argument("--entity", help="entity id (SA, person)")
    listing.add_argument("--limit", type=int, default=50)
    show = command(requests, "show", "one sync request with its snapshot and errors", _show,
                   with_user=False)
    show.add_argument("request_id")
    resend = command(requests, "resend",
                     "send a request in ERROR again, with the entity's current data", _resend,
                     with_user=False)
    resend.add_argument("request_id")


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


_HANDLERS: tuple[Handler, ...] = (_list, _show, _resend)
