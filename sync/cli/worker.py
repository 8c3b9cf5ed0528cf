"""``c2m-sync worker [ccb|mdm|all]``: the long-running processes of the pipeline.

- ``ccb``: the relay (``SYNC-RELAY``), the acknowledgement consumer and ``SYNC-TIMEOUT``.
- ``mdm``: the MDM worker; the bus loop by default (``--engine faust`` for the faust-streaming
  agent, Kafka only; see docs/worker.md for why the loop is the default).
- ``all``: both in one process (the only way to run them on the in-process bus; each run
  then uses topic names of its own, because the in-process topics start empty every time).

They stop cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import uuid
from collections.abc import Awaitable

from sync.cli.common import Context, whole_number
from sync.config.settings import Settings, TopicNames
from sync.pipeline.ccb_worker import ensure_topics, run_ccb_worker
from sync.pipeline.stores import open_outbox
from sync.transport.bus import bus_of
from sync.worker.diagnostics import enable_stack_dumps
from sync.worker.logs import configure_worker_logging
from sync.worker.mdm import Engine, run_mdm_worker

log = logging.getLogger("sync.worker")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker", help="run the sync workers (ccb: relay + acknowledgements; mdm; all)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    worker.add_argument("side", nargs="?", choices=["ccb", "mdm", "all"], default="all")
    worker.add_argument("--engine", choices=["faust", "loop"],
                        help="MDM worker engine (default: loop)")
    # Refused here, like serve --port: a port out of range would otherwise be found only
    # when the endpoint binds, after the worker has started.
    worker.add_argument("--health-port", type=whole_number("port", 0, 65535), default=0,
                        help="serve the MDM worker's GET /health on this port (0: none)")
    worker.add_argument("--health-host", default="127.0.0.1")
    worker.set_defaults(handler=_run, own_process_tuning=True)


def _run(context: Context, args: argparse.Namespace) -> int:
    configure_worker_logging()
    settings, admin, clock = context.settings, context.admin, context.clock
    if settings.broker_url.startswith("memory://"):
        settings = _fresh_in_process_topics(settings, uuid.uuid4().hex[:12])
        if args.side in ("ccb", "all"):
            outbox = open_outbox(settings.ccb_db_url, admin, clock)
            try:
                again = outbox.republish_unanswered(clock.now())
            finally:
                outbox.store.dispose()
            if again:
                log.info("%d sync requests sent on an earlier run's in-process bus are queued "
                         "again", again)
    engine: Engine = "faust" if args.engine == "faust" else "loop"
    if args.side == "mdm" and settings.broker_url.startswith("memory://"):
        log.warning("the in-process bus lives in this process only: nothing else can publish "
                    "to this MDM worker (use 'worker all' or a kafka:// broker)")

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        enable_stack_dumps(loop)
        # Every side reads or writes topics the others read: create what is missing first.
        bus = bus_of(settings)
        await bus.start()
        try:
            await ensure_topics(bus, settings)
        finally:
            await bus.stop()
        tasks: list[Awaitable[object]] = []
        if args.side in ("ccb", "all"):
            tasks.append(run_ccb_worker(settings, admin, clock, stop))
        if args.side in ("mdm", "all"):
            tasks.append(run_mdm_worker(settings, admin, clock, stop,
                                        health_port=args.health_port,
                                        health_host=args.health_host, engine=engine))
        try:
            await asyncio.gather(*tasks)
        except Exception as error:
            log.error("worker stopped: %s: %s", type(error).__name__, error)
            stop.set()
            return 1
        log.info("worker stopped")
        return 0

    return asyncio.run(serve())


def _fresh_in_process_topics(settings: Settings, run_id: str) -> Settings:
    """Topic names of their own for this run of the in-process bus. Its topics start empty in
    every process, while the MDM store remembers the positions it consumed in earlier runs;
    under the old names new records would sit at offsets MDM has already answered."""
    topics = settings.topics
    return settings.model_copy(update={"topics": TopicNames(
        sync_requests=f"{topics.sync_requests}.run-{run_id}",
        acknowledgements=f"{topics.acknowledgements}.run-{run_id}",
        dead_letters=f"{topics.dead_letters}.run-{run_id}")})
