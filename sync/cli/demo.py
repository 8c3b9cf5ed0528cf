"""``c2m-sync demo``: runs on the embedded default (SQLite files, in-process bus).

Until the sync pipeline lands it prints the version and a summary of the loaded configuration.
"""

from __future__ import annotations

import argparse

from sync import __version__
from sync.cli.common import Context, add_json_flag
from sync.cli.info import admin_summary, print_sa_types


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser("demo", help="run the demonstration on the embedded default")
    add_json_flag(demo)
    demo.set_defaults(handler=_demo)


def _demo(context: Context, args: argparse.Namespace) -> int:
    settings = context.settings
    summary = admin_summary(context.admin)

    def human() -> None:
        print(f"c2m-sync {__version__} demo (embedded: {settings.broker_url}, "
              f"CCB {settings.ccb_db_url}, MDM {settings.mdm_db_url})")
        print(f"admin data: base time zone {summary['base_time_zone']}, "
              f"service types {', '.join(summary['service_types'])}")
        print_sa_types(context, context.admin)

    context.emit({"version": __version__, "settings": settings.model_dump(mode="json"),
                  "admin": summary}, human)
    return 0
