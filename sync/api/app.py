"""The ASGI application: the JSON API under ``/api`` and the console pages under ``/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sync.api import routes
from sync.api.runtime import Runtime
from sync.console import pages


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(title="c2m-sync", version="1", lifespan=lifespan,
                  description="Operator API over CCB service agreements and MDM usage "
                              "subscriptions, and their synchronization.")
    app.state.runtime = runtime
    routes.install(app)
    pages.install(app)
    return app
