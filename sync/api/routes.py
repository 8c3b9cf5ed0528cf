"""JSON endpoints under ``/api``, ``/health`` and ``/metrics`` (see docs/api.md)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sync.api import (
    ccb_views,
    commands,
    monitoring,
    operations,
    problems,
    synchronization,
    work,
)
from sync.api.runs import Runs
from sync.api.runtime import Runtime
from sync.api.security import SCHEME_NAME
from sync.batches import BatchReport
from sync.reconcile.report import ReconcileReport
from sync.storage.outbox import ResendReport

ROUTERS = (ccb_views.router, commands.router, work.router, synchronization.router,
           operations.router, monitoring.router)


def install(app: FastAPI) -> None:
    """Add the API's routers, error handlers and request counting to ``app``."""
    problems.install(app)
    monitoring.install(app)
    app.state.reconciliations = Runs[ReconcileReport]("RC", operations.KEPT_RECONCILIATIONS)
    app.state.batch_runs = Runs[BatchReport]("BR", operations.KEPT_BATCH_RUNS,
                                              stopped=lambda report: report.stopped)
    app.state.resend_runs = Runs[ResendReport]("RS", synchronization.KEPT_RESENDS,
                                               stopped=lambda report: report.stopped)
    for router in ROUTERS:
        app.include_router(router)
    _document_read_access(app)


def _document_read_access(app: FastAPI) -> None:
    """Under open reads a read needs no token: say so in the OpenAPI document (an empty
    security requirement is the alternative that needs nothing)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        runtime: Runtime = app.state.runtime
        if runtime.access.open_reads:
            for path_item in document.get("paths", {}).values():
                operation = path_item.get("get")
                if operation and {SCHEME_NAME: []} in operation.get("security", []):
                    operation["security"] = [{}, {SCHEME_NAME: []}]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
