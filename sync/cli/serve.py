"""``c2m-sync serve``: the operator HTTP API (``/api``, ``/health``, ``/metrics``, the OpenAPI
document at ``/openapi.json``) and the console, on uvicorn.

The server reads and writes the stores only; the pipeline (relay, MDM worker) stays
``c2m-sync worker all``. Writes need a bearer token from ``C2M_SYNC_API_TOKENS``
(comma-separated) or ``--token-file`` (one per line); reads are open unless ``--private-reads``
or ``C2M_SYNC_API_PRIVATE_READS=true``. A server without tokens refuses every write.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TypeAlias

from fastapi import FastAPI

from sync.api.app import create_app
from sync.api.runtime import Runtime
from sync.api.security import TOKENS_ENV, TokenFileError, access_policy
from sync.cli.common import CliError, Context, whole_number
from sync.worker.logs import configure_worker_logging

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


_port = whole_number("port", 0, 65535)


def register(commands: Subparsers) -> None:
    serve = commands.add_parser(
        "serve", help="run the operator HTTP API and console",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on "
                                                           "(default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="port (default 8080)")
    serve.add_argument("--token-file", type=Path,
                       help="file of API tokens, one per line (# comments); added to "
                            f"{TOKENS_ENV}")
    serve.add_argument("--private-reads", action="store_true",
                       help="reads need a token too (env C2M_SYNC_API_PRIVATE_READS=true)")
    serve.set_defaults(handler=_serve)


def build_app(context: Context, args: argparse.Namespace) -> FastAPI:
    """The application ``serve`` runs, from the CLI's settings and the serve options."""
    try:
        access = access_policy(token_file=args.token_file, private_reads=args.private_reads)
    except TokenFileError as error:
        raise CliError(str(error), exit_code=2) from None
    if not access.tokens:
        print(f"warning: no API tokens ({TOKENS_ENV} or --token-file): every write is refused",
              file=sys.stderr)
    runtime = Runtime(settings=context.settings, admin=context.admin, access=access)
    runtime.open_embedded_stores()
    return create_app(runtime)


def _serve(context: Context, args: argparse.Namespace) -> int:
    import uvicorn

    app = build_app(context, args)
    # The API's own lines (a long run ending, an unexpected error with its traceback) on
    # stderr beside uvicorn's, as the workers write theirs.
    configure_worker_logging()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
