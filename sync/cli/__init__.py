"""The ``c2m-sync`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function; adding a
group is adding its module name to ``COMMAND_MODULES``. Errors print one line on stderr (no
traceback) and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from sync.cli.common import CliError, Context, parse_date
from sync.config.admin import AdminConfigError
from sync.config.settings import SettingsError
from sync.process_tuning import tune_garbage_collection
from sync.storage.common import DatabaseFileError

# 128 + SIGPIPE, what a shell reports for a program its pipe's reader left.
BROKEN_PIPE_EXIT_CODE = 141

COMMAND_MODULES = ("sync.cli.info", "sync.cli.dev", "sync.cli.demo", "sync.cli.ccb",
                   "sync.cli.schemas", "sync.cli.topics", "sync.cli.mdm", "sync.cli.batch",
                   "sync.cli.worker", "sync.cli.reconcile", "sync.cli.serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c2m-sync",
        description="Synchronize CCB service agreements with MDM usage subscriptions.",
    )
    parser.add_argument("--ccb-db-url", help="CCB database URL (env C2M_SYNC_CCB_DB_URL)")
    parser.add_argument("--mdm-db-url", help="MDM database URL (env C2M_SYNC_MDM_DB_URL)")
    parser.add_argument("--broker", help="memory:// or kafka://HOST:PORT (env C2M_SYNC_BROKER_URL)")
    parser.add_argument("--business-date", type=parse_date,
                        help="business date YYYY-MM-DD (env C2M_SYNC_BUSINESS_DATE)")
    parser.add_argument("--admin-config", type=Path,
                        help="admin data YAML file (env C2M_SYNC_ADMIN_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    context = Context(args)
    if argv is None and getattr(args, "own_process_tuning", False):
        # Started as a program (not called from other code): the process is the command's.
        tune_garbage_collection()
    try:
        result: int = args.handler(context, args)
        sys.stdout.flush()  # here, where a closed pipe is still ours to handle
        return result
    except BrokenPipeError:
        # The reader went away (``c2m-sync ccb sync list | head``): not an error worth a
        # traceback. Later writes, and the interpreter's own flush at exit, go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_EXIT_CODE
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (AdminConfigError, SettingsError, DatabaseFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        print(f"error: {error.title}: " + "; ".join(
            f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()),
            file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
