"""``c2m-sync schemas export [--dir schemas] [--check]``: the wire contract as JSON Schema files.

The files are generated from the message models; ``--check`` writes nothing and fails when a
file is missing or differs, so CI can tell a model change that was not exported.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sync.cli.common import CliError, Context, add_json_flag
from sync.mapping.messages import schema_documents


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = commands.add_parser("schemas", help="JSON Schema files of the wire contract")
    schema_commands = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schema_commands.add_parser(
        "export", help="write one JSON Schema file per message type")
    export.add_argument("--dir", type=Path, default=Path("schemas"),
                        help="folder of the schema files (default: schemas)")
    export.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a file is missing or out of date")
    add_json_flag(export)
    export.set_defaults(handler=_export)


def _status(path: Path, text: str) -> str:
    try:
        current = path.read_text("utf-8")
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        raise CliError(f"{path}: cannot read: {error.strerror}") from None
    return "up to date" if current == text else "differs"


def _export(context: Context, args: argparse.Namespace) -> int:
    directory: Path = args.dir
    documents = schema_documents()
    statuses = {name: _status(directory / name, text) for name, text in documents.items()}
    stale = [name for name, status in statuses.items() if status != "up to date"]
    if not args.check:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for name in stale:
                (directory / name).write_text(documents[name], "utf-8")
        except OSError as error:
            raise CliError(f"{error.filename}: cannot write: {error.strerror}") from None
    payload = {"dir": str(directory), "check": args.check,
               "files": {name: ("written" if name in stale and not args.check else status)
                         for name, status in statuses.items()}}

    def human() -> None:
        for name, status in payload["files"].items():
            print(f"{directory / name}: {status}")
        if args.check and stale:
            print("run `c2m-sync schemas export` to bring the files up to date")

    context.emit(payload, human)
    return 1 if args.check and stale else 0
