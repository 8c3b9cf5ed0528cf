"""``c2m-sync mdm us show|list``: what MDM holds, read from the MDM store (``--mdm-db-url``).

The store's tables are created when missing (and, for SQLite, the database's folder), so the
commands answer "nothing yet" on a fresh installation instead of failing.
"""

from __future__ import annotations

import argparse
from typing import Any, TypeAlias

from sync.cli.common import CliError, Context, add_json_flag
from sync.mdm.model import UsageSubscription, UsStatus
from sync.pipeline.stores import open_mdm_store
from sync.storage.mdm import MdmStore

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(commands: Subparsers) -> None:
    mdm = commands.add_parser("mdm", help="inspect MDM: usage subscriptions")
    mdm_commands = mdm.add_subparsers(dest="mdm_command", required=True, metavar="GROUP")
    us = mdm_commands.add_parser("us", help="usage subscriptions")
    us_commands = us.add_subparsers(dest="us_command", required=True, metavar="COMMAND")

    show = us_commands.add_parser("show", help="one usage subscription by external id (SA id)")
    show.add_argument("external_id", metavar="EXTERNAL_ID")
    add_json_flag(show)
    show.set_defaults(handler=_show)

    listing = us_commands.add_parser("list", help="usage subscriptions, optionally filtered")
    listing.add_argument("--status", type=str.upper, choices=[s.value for s in UsStatus],
                         help="only this status")
    listing.add_argument("--sp", dest="sp_id", metavar="SP_ID",
                         help="only subscriptions linking this service point")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)


def open_store(context: Context) -> MdmStore:
    """The MDM store of the settings, its tables created when missing."""
    return open_mdm_store(context.settings.mdm_db_url, context.admin)


def _as_json(us: UsageSubscription) -> dict[str, Any]:
    return us.model_dump(mode="json")


def _show(context: Context, args: argparse.Namespace) -> int:
    store = open_store(context)
    try:
        us = store.get_us(args.external_id)
    finally:
        store.dispose()
    if us is None:
        raise CliError(f"usage subscription {args.external_id} not found in MDM")

    def human() -> None:
        print(us.info or us.external_id)
        for label, value in [
            ("external id", us.external_id), ("account", us.external_account_id),
            ("US type", us.us_type), ("status", us.status.value),
            ("start", us.start_date), ("end", us.end_date or "-"),
            ("time zone", us.time_zone or "-"), ("main contact", us.main_contact_id or "-"),
            ("division", us.division or "-"), ("master US", us.master_external_id or "-"),
            ("applied version", us.last_applied_version),
            ("sync request", us.sync_request_id or "-"),
        ]:
            print(f"{label:<16}: {value}")
        context.table("SP links", ["#", "SP", "start", "stop", "usage", "use %"], [
            (i, link.sp_id, link.start, link.stop or "-", link.usage_flag.value,
             f"{link.use_percent:g}") for i, link in enumerate(us.sp_links)])
        context.table("Usage groups", ["#", "group", "start", "end"], [
            (i, group.group, group.start, group.end or "-")
            for i, group in enumerate(us.usage_groups)])
        if us.factor_overrides:
            context.table("Factor overrides", ["#", "factor", "value", "start", "end"], [
                (i, fo.factor, f"{fo.value:g}", fo.start, fo.end or "-")
                for i, fo in enumerate(us.factor_overrides)])

    context.emit(_as_json(us), human)
    return 0


def _list(context: Context, args: argparse.Namespace) -> int:
    store = open_store(context)
    try:
        found = store.list_us(status=UsStatus(args.status) if args.status else None,
                              sp_id=args.sp_id)
    finally:
        store.dispose()

    def human() -> None:
        if not found:
            print("no usage subscriptions match")
            return
        context.table(f"Usage subscriptions ({len(found)})",
                      ["external id", "account", "US type", "status", "start", "end", "SPs"],
                      [(us.external_id, us.external_account_id, us.us_type, us.status.value,
                        us.start_date, us.end_date or "-", ", ".join(us.sp_ids()))
                       for us in found])

    context.emit([_as_json(us) for us in found], human)
    return 0
