"""Entry point of the MDM worker: ``run_mdm_worker`` (what ``c2m-sync worker mdm`` calls), and
``python -m sync.worker.mdm`` to run it on its own.

The engine is ``faust`` (a faust-streaming agent; Kafka only) or ``loop`` (the same processor
over the ``Bus`` port: ``memory://`` or ``kafka://``). SIGTERM and SIGINT stop it cleanly: the
consumer leaves, and a record being applied then is committed whole or read again next time.
SIGUSR1 writes the stacks of its threads and tasks to standard error
(:mod:`sync.worker.diagnostics`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from sync.cli.common import whole_number
from sync.clock import Clock, clock_for
from sync.config.admin import AdminConfig, load_admin_config
from sync.config.settings import Settings, load_settings
from sync.pipeline.ccb_worker import ensure_topics
from sync.process_tuning import tune_garbage_collection
from sync.storage.mdm import MdmStore
from sync.transport.bus import bus_of
from sync.worker.diagnostics import enable_stack_dumps
from sync.worker.health import HealthCheck, start_health_server
from sync.worker.logs import configure_worker_logging
from sync.worker.mdm_loop import run_mdm_loop
from sync.worker.stats import WorkerStats

Engine = Literal["faust", "loop"]
log = logging.getLogger("sync.worker")

async def run_mdm_worker(settings: Settings, admin: AdminConfig, clock: Clock,
                         stop_event: asyncio.Event, *, health_port: int = 0,
                         health_host: str = "127.0.0.1", engine: Engine = "loop",
                         stats: WorkerStats | None = None,
                         app_id: str | None = None) -> WorkerStats:
    """Consume the sync topic into the MDM store at ``settings.mdm_db_url`` (schema created
    when missing) until ``stop_event`` is set. ``health_port`` 0 serves no health endpoint;
    ``app_id`` names the faust app and its consumer group (default ``c2m-sync-mdm``)."""
    if engine == "faust" and not settings.broker_url.startswith("kafka://"):
        raise ValueError(f"the faust engine needs a kafka:// broker, not "
                         f"{settings.broker_url!r}; use --engine loop for memory://")
    stats = stats or WorkerStats()
    store = MdmStore(settings.mdm_db_url, admin)
    bus = bus_of(settings)
    try:
        await asyncio.to_thread(store.create_schema)
        await bus.start()
        # A faust consumer subscribed to a topic that does not exist yet gets no partitions
        # and idles; creating missing topics first (as the CCB worker does) avoids that.
        await ensure_topics(bus, settings)
        if engine == "faust":
            from sync.worker.faust_app import APP_ID, build_app, run_faust_worker

            app = build_app(settings, store, clock, bus, stats=stats, web_port=health_port,
                            web_host=health_host, app_id=app_id or APP_ID)
            await run_faust_worker(app, stop_event)
            return stats
        server = (await start_health_server(HealthCheck(stats, store), health_port, health_host)
                  if health_port > 0 else None)
        try:
            return await run_mdm_loop(bus, store, settings, clock, stop_event, stats=stats)
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()
    finally:
        await bus.stop()
        store.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sync.worker.mdm",
                                     description="Run the MDM worker.")
    parser.add_argument("--broker", help="kafka://HOST:PORT or memory:// (C2M_SYNC_BROKER_URL)")
    parser.add_argument("--mdm-db-url", help="MDM database URL (C2M_SYNC_MDM_DB_URL)")
    parser.add_argument("--admin-config", type=Path, help="admin data YAML file")
    parser.add_argument("--engine", choices=["faust", "loop"], default="loop")
    parser.add_argument("--health-port", type=whole_number("port", 0, 65535), default=0,
                        help="serve GET /health on this port (0: no endpoint)")
    parser.add_argument("--health-host", default="127.0.0.1")
    parser.add_argument("--app-id", help="faust app id and consumer group (default "
                        "c2m-sync-mdm)")
    args = parser.parse_args(argv)
    configure_worker_logging()
    try:
        settings = load_settings({"broker_url": args.broker, "mdm_db_url": args.mdm_db_url,
                                  "admin_config": args.admin_config})
        admin = load_admin_config(settings.admin_config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    clock = clock_for(settings.business_date, admin.installation.base_time_zone)
    tune_garbage_collection()
    return asyncio.run(_serve(settings, admin, clock, args))


async def _serve(settings: Settings, admin: AdminConfig, clock: Clock,
                 args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    enable_stack_dumps(loop)
    try:
        stats = await run_mdm_worker(settings, admin, clock, stop, health_port=args.health_port,
                                     health_host=args.health_host, engine=args.engine,
                                     app_id=args.app_id)
    except Exception as error:
        log.error("MDM worker stopped: %s: %s", type(error).__name__, error)
        return 1
    log.info("MDM worker stopped: %s", stats.snapshot()["counts"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
