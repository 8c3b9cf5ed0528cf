"""``c2m-sync demo``: the landlord/tenant stop-service process played through the real pipeline
(see :mod:`sync.demo` and docs/demo.md), then the report and the CCB / MDM comparison.

The demo keeps its own databases (``demo-ccb.db`` and ``demo-mdm.db`` in the work folder, wiped
first) and its own topics (named for the run), so it never touches the databases or topics of
the other commands. The bus is ``--broker`` (given after ``demo`` or before it), else the
in-process bus: the environment's broker setting is deliberately not used, so that ``make demo``
always runs on the embedded default. Exit code 0 only when CCB and MDM agree.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import uuid
from pathlib import Path

from rich.console import Console

from sync.cli.common import CliError, Context, add_json_flag
from sync.config.settings import SettingsError, load_settings
from sync.demo import DemoError, DemoOptions, DemoReport, play_demo
from sync.demo.report import sync_line
from sync.demo.stage import DEFAULT_BROKER

DISAGREE_EXIT = 1
PIPED_WIDTH = 160


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="play the landlord/tenant stop process through the pipeline and compare "
                     "CCB with MDM")
    # Its own dest: the global --broker (before the command) must not be reset by this one.
    demo.add_argument("--broker", dest="demo_broker", metavar="URL",
                      help=f"memory://NAME or kafka://HOST:PORT (default {DEFAULT_BROKER})")
    demo.add_argument("--workdir", type=Path, metavar="DIR",
                      help="folder for the demo databases (default: a new var/demo-<time>)")
    add_json_flag(demo)
    demo.set_defaults(handler=_demo)


def _demo(context: Context, args: argparse.Namespace) -> int:
    broker = args.demo_broker or args.broker or DEFAULT_BROKER
    try:  # the same check as every other command's broker setting, without the environment
        load_settings({"broker_url": broker}, environ={})
    except SettingsError as error:
        raise CliError(str(error), exit_code=2) from None
    workdir = args.workdir or Path("var") / f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    options = DemoOptions(workdir=workdir, run_id=uuid.uuid4().hex[:8], broker_url=broker)
    try:
        report = asyncio.run(play_demo(options, context.admin))
    except DemoError as error:
        raise CliError(str(error)) from None
    context.emit(report.to_dict(), lambda: _print(context, report))
    return 0 if report.agree else DISAGREE_EXIT


def _print(context: Context, report: DemoReport) -> None:
    if not context.stdout.is_terminal:
        # Piped or captured output has no screen to fit: ids are worth more than 80 columns.
        context.stdout = Console(soft_wrap=True, width=PIPED_WIDTH)
    out = context.stdout
    settings = report.settings
    out.print(f"[bold]c2m-sync demo[/bold] on {settings['broker_url']}; CCB "
              f"{settings['ccb_db_url']}, MDM {settings['mdm_db_url']}; business dates "
              f"{report.business_dates[0]} to {report.business_dates[1]}")
    for scene in report.scenes:
        steps = f" (steps {scene.steps})" if scene.steps else ""
        out.print(f"\n[bold]{scene.number}. {scene.title}[/bold]{steps}")
        out.print(f"   CCB: {scene.ccb}", highlight=False)
        out.print(f"   MDM: {scene.mdm}", highlight=False)
        out.print(f"   sync: {sync_line(scene.sync) or 'nothing to send'}", highlight=False)
    out.print()
    context.table("Service agreements (CCB)",
                  ["SA", "account", "type", "status", "start", "end", "premise", "created by"],
                  [(sa["id"], sa["account_id"], sa["sa_type"],
                    f"{sa['status']} {sa['status_label']}", sa["start_date"], sa["end_date"],
                    sa["premise_id"], sa["created_by"]) for sa in report.service_agreements])
    context.table("Usage subscriptions (MDM)",
                  ["US", "account", "type", "status", "start", "end", "SP links", "version"],
                  [(us["id"], us["account_id"], us["us_type"], us["status"], us["start_date"],
                    us["end_date"], "; ".join(f"{link['sp_id']} {link['start']} to "
                                              f"{link['stop'] or 'open'}"
                                              for link in us["sp_links"]),
                    us["version"]) for us in report.usage_subscriptions])
    context.table("Field activities (CCB)",
                  ["FA", "type", "SA", "SP", "purpose", "scheduled", "status", "read"],
                  [(fa["id"], fa["fa_type"], fa["sa_id"], fa["sp_id"], fa["purpose"],
                    fa["scheduled_date"], fa["status"], fa["completion_read"])
                   for fa in report.field_activities])
    context.table("To Do entries (CCB)", ["To Do", "type", "status", "drill key", "message"],
                  [(todo["id"], todo["todo_type"], todo["status"], todo["drill_key"],
                    todo["message"]) for todo in report.todos])
    requests = report.sync_requests
    context.table(f"Sync requests by state ({requests['total']} in all)", ["state", "count"],
                  list(requests["counts"].items()))
    context.table("Sync requests that were in error",
                  ["request", "entity", "version", "state now", "errors", "note"],
                  [(r["id"], r["entity"], r["version"], r["state"],
                    "; ".join(f"{e['code']} {e['path']}" for e in r["errors"]), r["note"])
                   for r in requests["in_error"]])
    comparison = report.comparison
    if comparison.drifts:
        context.table("Differences between CCB and MDM",
                      ["SA / US", "kind", "field", "CCB", "MDM"],
                      [(d.entity_id, d.kind.value, d.field, d.ccb_value, d.mdm_value)
                       for d in comparison.drifts])
    style = "bold green" if comparison.agree else "bold red"
    out.print(f"[{style}]{comparison.summary()}[/{style}]")
