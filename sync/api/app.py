"""The ASGI application: the JSON API under ``/api`` and the console pages under ``/``.

On shutdown the batch runs, resends and reconciliations still going are asked to stop (a
batch run or a resend ends after its unit of work, a reconciliation during its replay) and
waited for, up to :data:`SHUTDOWN_WAIT_S` in all, before the stores are closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sync.api import routes
from sync.api.runs import stop_all
from sync.api.runtime import Runtime
from sync.console import pages

SHUTDOWN_WAIT_S = 60.0
log = logging.getLogger("sync.api")


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Batch runs and resends end between two units of work, a reconciliation after
            # the replay's fetch under way (once its repair has begun, at its end).
            left = await asyncio.to_thread(
                stop_all, (app.state.batch_runs, app.state.resend_runs,
                           app.state.reconciliations), SHUTDOWN_WAIT_S)
            for run in left:
                log.warning("%s (%s) had not stopped %.0f s after the shutdown began; its "
                            "unit of work under way is rolled back",
                            run.id, run.kind, SHUTDOWN_WAIT_S)
            runtime.close()

    app = FastAPI(title="c2m-sync", version="1", lifespan=lifespan,
                  description="Operator API over CCB service agreements and MDM usage "
                              "subscriptions, and their synchronization.")
    app.state.runtime = runtime
    routes.install(app)
    pages.install(app)
    return app
