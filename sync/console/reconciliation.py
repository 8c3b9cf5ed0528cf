"""The console's reconciliation report (SPEC.md section 7): CCB, the sync topic and MDM compared
on request, and a repair that queues fresh sync requests for the drifted SAs.

A report replays the sync topic with a throwaway consumer, which takes a moment on a large
topic, so the page runs it when asked (``/reconcile?run=1``), not on every visit. The
in-process bus (``memory://``) lives inside the process that runs the pipeline: a server has
no topic to replay there, and the page says so.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from sync.api.runtime import Runtime
from sync.console.actions import FormError, perform
from sync.console.render import reader, render, runtime_of
from sync.reconcile.replay import ReplayError
from sync.reconcile.report import ReconcileReport
from sync.reconcile.run import reconcile, repair
from sync.transport.bus import BusError, bus_of
from sync.worker.mdm_processor import StoreUnavailableError

router = APIRouter(include_in_schema=False)

IN_PROCESS_BUS = ("This server runs on the in-process bus (memory://), which lives inside the "
                  "process that runs the pipeline: there is no sync topic here to replay. Run "
                  "the server and the workers on Kafka (C2M_SYNC_BROKER_URL=kafka://HOST:PORT)"
                  " to reconcile from the console.")


class ReconcileUnavailable(Exception):  # noqa: N818 - shown to the user as a refusal
    """The report could not be made (broker unreachable, topic missing, MDM store down)."""


def run_report(runtime: Runtime) -> ReconcileReport:
    """Replay the sync topic and compare; runs its own event loop (call from a worker thread)."""
    settings = runtime.settings
    if settings.broker_url.startswith("memory://"):
        raise ReconcileUnavailable(IN_PROCESS_BUS)

    async def work() -> ReconcileReport:
        bus = bus_of(settings)
        await bus.start()
        try:
            return await reconcile(runtime.outbox, runtime.mdm, bus,
                                   settings.topics.sync_requests, runtime.admin)
        finally:
            await bus.stop()

    try:
        return asyncio.run(work())
    except (BusError, ReplayError, StoreUnavailableError) as error:
        raise ReconcileUnavailable(f"{settings.broker_url}: {error}") from None


@router.get("/reconcile")
def reconcile_page(request: Request, run: bool = False) -> Response:
    who = reader(request)
    if isinstance(who, Response):
        return who
    runtime = runtime_of(request)
    report: ReconcileReport | None = None
    problem = IN_PROCESS_BUS if runtime.settings.broker_url.startswith("memory://") else None
    status_code = 200
    if run and problem is None:
        try:
            report = run_report(runtime)
        except ReconcileUnavailable as error:
            problem, status_code = str(error), 503
    return render(request, "reconcile.html", {
        "report": report, "problem": problem, "topic": runtime.settings.topics.sync_requests},
        status_code=status_code)


@router.post("/reconcile/repair")
async def repair_page(request: Request) -> Response:
    def write(runtime: Runtime, _user: str, _form: FormData) -> str:
        try:
            report = run_report(runtime)
        except ReconcileUnavailable as error:
            raise RepairRefused(str(error)) from None
        if report.agree:
            return f"nothing to repair: {report.summary()}"
        return repair(runtime.outbox, report, runtime.clock.now()).summary()

    return await perform(request, "/reconcile?run=1", write)


class RepairRefused(FormError):  # noqa: N818 - shown to the user as a refusal
    """A repair that could not start because the report could not be made."""
