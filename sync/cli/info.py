"""``c2m-sync version`` and ``c2m-sync config show|check``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sync import __version__
from sync.cli.common import Context, add_json_flag
from sync.config.admin import AdminConfig, load_admin_config


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)

    config = commands.add_parser("config", help="show or check the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="summarize settings and admin data")
    add_json_flag(show)
    show.set_defaults(handler=_show)
    check = config_commands.add_parser("check", help="validate an admin data file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_check)


def _version(context: Context, args: argparse.Namespace) -> int:
    print(f"c2m-sync {__version__}")
    return 0


def admin_summary(admin: AdminConfig) -> dict[str, Any]:
    return {
        "base_time_zone": admin.installation.base_time_zone,
        "multi_time_zone": admin.installation.multi_time_zone,
        "fa_creation": admin.installation.fa_creation.value,
        "service_types": sorted(admin.service_types),
        "sa_types": {code: {"service_type": t.service_type, "premise_based": t.premise_based,
                            "fieldwork": t.fieldwork_required,
                            "reversion": t.landlord_reversion, "us_type": t.us_type}
                     for code, t in admin.sa_types.items()},
        "us_types": sorted(admin.us_types),
        "todo_types": sorted(admin.todo_types),
        "contact_types": sorted(admin.contact_types),
    }


def print_sa_types(context: Context, admin: AdminConfig) -> None:
    """The SA types table: what each type does and which US type it maps to."""
    def yes_no(flag: bool) -> str:
        return "yes" if flag else "no"

    rows = [(code, t.service_type, yes_no(t.premise_based), yes_no(t.fieldwork_required),
             yes_no(t.landlord_reversion), t.us_type or "-")
            for code, t in admin.sa_types.items()]
    context.table("SA types", ["SA type", "service", "premise based", "fieldwork",
                               "reversion", "US type"], rows)


def _show(context: Context, args: argparse.Namespace) -> int:
    settings = context.settings
    summary = {
        "version": __version__,
        "settings": settings.model_dump(mode="json"),
        "admin_source": str(settings.admin_config or "built-in default"),
        "admin": admin_summary(context.admin),
    }

    def human() -> None:
        print(f"c2m-sync {__version__}")
        print(f"CCB database : {settings.ccb_db_url}")
        print(f"MDM database : {settings.mdm_db_url}")
        print(f"broker       : {settings.broker_url}")
        print(f"broker auth  : {settings.kafka_security.describe()}")
        print(f"record batch : up to {settings.kafka_producer_batch_bytes:,} bytes per partition "
              "and write")
        print(f"topics       : {settings.topics.sync_requests}, "
              f"{settings.topics.acknowledgements}, {settings.topics.dead_letters} "
              f"({settings.topic_partitions} partitions)")
        print(f"business date: {settings.business_date or 'today (system clock)'}")
        print(f"admin data   : {summary['admin_source']}")
        print_sa_types(context, context.admin)

    context.emit(summary, human)
    return 0


def _check(context: Context, args: argparse.Namespace) -> int:
    admin = load_admin_config(args.file)
    print(f"{args.file}: valid ({len(admin.sa_types)} SA types, {len(admin.us_types)} US types)")
    return 0
