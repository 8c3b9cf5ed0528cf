"""The console's reconciliation report (SPEC.md section 7): CCB, the sync topic and MDM compared
on request, and a repair that queues fresh sync requests for the drifted SAs.

A report replays the sync topic with a throwaway consumer, which takes a while on a large
topic: ``/reconcile?run=1`` starts it as a run of the server's reconciliations (the same runs
as ``POST /api/reconciliations``, one at a time) and sends the page to ``/reconcile?id=RC-n``,
which follows its progress, reloading itself, until the report is there. A signed-in operator
can stop it during the replay. The repair queues fresh requests for the entities of the report
on the page (a resend sends each entity's current data, so a report a few minutes old repairs
nothing wrongly). The in-process bus (``memory://``) lives inside the process that runs the
pipeline: a server has no topic to replay there, and the page says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from sync.api.operations import (
    RECONCILIATION,
    reconciliation_runs_of,
    replay_progress,
    replayed_report,
)
from sync.api.problems import ProblemError
from sync.api.runs import Run, RunConflictError, RunState
from sync.api.runtime import Runtime
from sync.console.actions import FormError, perform, redirect, stop_run
from sync.console.render import RUN_REFRESH_S, reader, render, runtime_of
from sync.reconcile.replay import ProgressCallback, ReplayError
from sync.reconcile.report import ReconcileReport
from sync.reconcile.run import repair
from sync.transport.bus import BusError
from sync.worker.mdm_processor import StoreUnavailableError

router = APIRouter(include_in_schema=False)

# Reconciliations listed on the page without one chosen.
LISTED = 10

IN_PROCESS_BUS = ("This server runs on the in-process bus (memory://), which lives inside the "
                  "process that runs the pipeline: there is no sync topic here to replay. Run "
                  "the server and the workers on Kafka (C2M_SYNC_BROKER_URL=kafka://HOST:PORT)"
                  " to reconcile from the console.")


class ReconcileUnavailable(Exception):  # noqa: N818 - shown to the user as a refusal
    """The report could not be made (broker unreachable, topic missing, MDM store down)."""


def run_report(runtime: Runtime, progress: ProgressCallback | None = None) -> ReconcileReport:
    """Replay the sync topic and compare (call from a worker thread); refused on the
    in-process bus."""
    if runtime.settings.broker_url.startswith("memory://"):
        raise ReconcileUnavailable(IN_PROCESS_BUS)
    try:
        return replayed_report(runtime, progress)
    except (BusError, ReplayError, StoreUnavailableError) as error:
        raise ReconcileUnavailable(f"{runtime.settings.broker_url}: {error}") from None


def _report_work(runtime: Runtime) -> Callable[[Run[ReconcileReport]], ReconcileReport]:
    def work(run: Run[ReconcileReport]) -> ReconcileReport:
        try:
            return run_report(runtime, replay_progress(run))
        except ReconcileUnavailable as error:
            # Shown as the run's error, in the words above (not as an unexpected failure).
            raise ProblemError("unavailable", str(error)) from None

    return work


@router.get("/reconcile")
def reconcile_page(request: Request, run: bool = False,
                   run_id: Annotated[str, Query(alias="id")] = "") -> Response:
    who = reader(request)
    if isinstance(who, Response):
        return who
    runtime = runtime_of(request)
    runs = reconciliation_runs_of(request)
    problem = IN_PROCESS_BUS if runtime.settings.broker_url.startswith("memory://") else None
    if run and problem is None:
        try:
            started = runs.start(RECONCILIATION, runtime.clock.now(), _report_work(runtime),
                                 runtime.clock.now)
        except RunConflictError as going:
            started = going.going  # one at a time: follow the one under way
        return redirect(f"/reconcile?id={started.id}")
    live = runs.get(run_id) if run_id else None
    chosen = live.snapshot() if live is not None else None  # one view of a run that may end
    if run_id and chosen is None:
        problem = f"no reconciliation {run_id} on this server (a restart forgets them)"
    return render(request, "reconcile.html", {
        "chosen": chosen, "report": chosen.result if chosen is not None else None,
        "runs": runs.newest_first()[:LISTED] if not run_id else [], "problem": problem,
        "topic": runtime.settings.topics.sync_requests,
        "refresh_s": RUN_REFRESH_S if chosen is not None
        and chosen.state is RunState.RUNNING else None},
        status_code=404 if run_id and chosen is None else 200)


@router.post("/reconcile/{run_id}/stop")
async def stop_page(request: Request, run_id: str) -> Response:
    return await perform(request, f"/reconcile?id={run_id}",
                         lambda _runtime, _user, _form: stop_run(
                             reconciliation_runs_of(request), run_id, "reconciliation",
                             "stops within a moment, during its replay"))


@router.post("/reconcile/repair")
async def repair_page(request: Request) -> Response:
    def write(runtime: Runtime, _user: str, form: FormData) -> str:
        if runtime.settings.broker_url.startswith("memory://"):
            raise RepairRefused(IN_PROCESS_BUS)
        run_id = form.get("id")
        run = reconciliation_runs_of(request).get(run_id) if isinstance(run_id, str) else None
        report = run.result if run is not None else None
        if report is None:
            raise RepairRefused("no finished reconciliation to repair from: run one, then "
                                "repair from its report")
        if report.agree:
            return f"nothing to repair: {report.summary()}"
        return repair(runtime.outbox, report, runtime.clock.now()).summary()

    return await perform(request, "/reconcile", write)


class RepairRefused(FormError):  # noqa: N818 - shown to the user as a refusal
    """A repair that could not start (no report to repair from, no topic to replay)."""
