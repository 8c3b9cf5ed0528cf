"""The CCB batch jobs (SPEC.md section 4): each selects its items through the batch queries
and runs its domain step (``sync.ccb.batches``) over them in chunked units of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sync.batches.ports import Selection
from sync.batches.registry import BatchUsageError, JobContext, jobs
from sync.batches.report import BatchReport
from sync.batches.runner import FastPath, Prefetch
from sync.ccb.batches import (
    BatchStep,
    ItemOutcome,
    RowProblem,
    StopRequestRow,
    activate_or_stop,
    complete_row,
    complete_with_near_read,
    create_missing_fas,
    flag_old_pending,
    needs_fieldwork_types,
    old_pending,
    parse_stop_rows,
    parse_upload,
    pending_monitor,
    raise_due_reminders,
    request_stop_row,
)
from sync.ccb.ports import CcbView
from sync.ccb.work import Work
from sync.text_files import UnreadableFileError, read_text_file


@dataclass(frozen=True)
class SelectionJob:
    """A job that runs ``step`` over the ids ``select`` picks, ``entity`` naming them."""

    code: str
    description: str
    entity: str
    select: Callable[[JobContext], Selection]
    step: BatchStep
    prefetch_sas: bool = False
    fast_path: Callable[[JobContext], FastPath | None] | None = None

    def run(self, context: JobContext) -> BatchReport:
        report = BatchReport(self.code, context.date())
        selection = self.select(context)
        context.progress.start(self.code, selection.count())
        context.runner(self.code).run(
            report, selection.chunks(context.chunk_size), self.step, self.entity,
            prefetch=context.queries.prefetch_sas if self.prefetch_sas else None,
            fast_path=self.fast_path(context) if self.fast_path is not None else None)
        return report


def offered_fast_path(context: JobContext, name: str, *args: Any) -> FastPath | None:
    """The set-based path the store's queries offer as ``name`` (the SQL store's do), built
    with ``args``; None on a store without it, where the general rules decide everything."""
    offer = getattr(context.queries, name, None)
    return offer(*args) if offer is not None else None


def saact_fast_path(context: JobContext) -> FastPath | None:
    """SAACT's set-based path for its common case (:func:`offered_fast_path`)."""
    return offered_fast_path(context, "saact_fast_path", context.admin, context.date())


@dataclass(frozen=True)
class FaUploadJob:
    """``FACOMPL``: the rows of ``--file`` (CSV or JSON); bad rows reported, good rows applied."""

    code: str = "FACOMPL"
    description: str = ("complete field activities from an upload file (--file, CSV or JSON:"
                        " fa_id, completed_at, read_value)")
    takes_file: ClassVar[bool] = True

    def run(self, context: JobContext) -> BatchReport:
        text, source = _upload(context, self.code)
        rows, problems = parse_upload(text, source, context.admin.installation.base_time_zone)
        by_key = {str(row.row): row for row in rows}

        def step(work: Work, key: str) -> ItemOutcome:
            return complete_row(work, by_key[key])

        return run_rows(context, self.code, list(by_key), problems, step)


@dataclass(frozen=True)
class StopUploadJob:
    """``STOPUPL``: a stop request per row of ``--file`` (CSV or JSON); bad rows reported,
    good rows applied. A chunk's unit reads every row's account neighbourhood in bulk."""

    code: str = "STOPUPL"
    description: str = ("request stops from an upload file (--file, CSV or JSON: account_id,"
                        " stop_date, sa_ids, premise_id, contact_method) (steps 1.1-1.9)")
    takes_file: ClassVar[bool] = True

    def run(self, context: JobContext) -> BatchReport:
        text, source = _upload(context, self.code)
        rows, problems = parse_stop_rows(text, source)
        return self.run_rows(context, rows, problems)

    def run_rows(self, context: JobContext, rows: Sequence[StopRequestRow],
                 problems: Sequence[RowProblem] = ()) -> BatchReport:
        """The job over rows already parsed (the API's and a driver's entry)."""
        by_key = {str(row.row): row for row in rows}

        def step(work: Work, key: str) -> ItemOutcome:
            return request_stop_row(work, by_key[key])

        def prefetch(view: CcbView, keys: Sequence[str]) -> CcbView:
            return context.queries.prefetch_accounts(
                view, [by_key[key].account_id for key in keys])

        # The set-based path for the common stop request; the runner's units are done by
        # user ``code``.
        fast_path = offered_fast_path(context, "stop_upload_fast_path", context.admin,
                                      context.date(), self.code, by_key)
        return run_rows(context, self.code, list(by_key), problems, step, prefetch, fast_path)


def _upload(context: JobContext, code: str) -> tuple[str, str]:
    """The text of ``--file`` and its name."""
    if context.file is None:
        raise BatchUsageError(f"{code} needs --file (a CSV or JSON upload)")
    try:
        return read_text_file(context.file), str(context.file)
    except UnreadableFileError as error:
        raise BatchUsageError(str(error)) from None


def run_rows(context: JobContext, code: str, keys: list[str], problems: Sequence[RowProblem],
             step: BatchStep, prefetch: Prefetch | None = None,
             fast_path: FastPath | None = None) -> BatchReport:
    """An upload's good rows (``keys``) through ``step`` in chunked units, its bad rows
    reported by number; the errors in row order."""
    report = BatchReport(code, context.date())
    for problem in problems:
        report.fail("row", str(problem.row), problem.reason)
    context.progress.start(code, len(keys) + len(problems))
    context.progress.advance(len(problems))
    chunks = (keys[index:index + context.chunk_size]
              for index in range(0, len(keys), context.chunk_size))
    context.runner(code).run(report, chunks, step, "row", prefetch=prefetch,
                             fast_path=fast_path)
    report.errors.sort(key=lambda error: int(error.entity_id)
                       if error.entity_id.isdigit() else 0)
    return report


SAACT = jobs.register(SelectionJob(
    "SAACT", "activate due pending starts and stop due pending stops; To Do when not ready"
    " (steps 5.9, 6.0)", "SA",
    lambda c: c.queries.due_pending_sas(c.date()), activate_or_stop, prefetch_sas=True,
    fast_path=saact_fast_path))

PSASPM = jobs.register(SelectionJob(
    "PSASPM", "create missing field activities for pending starts/stops within the lead days"
    " (step 1.6)", "SA",
    lambda c: c.queries.pending_sas_up_to(pending_monitor.horizon(c.admin, c.date()),
                                          needs_fieldwork_types(c.admin)),
    create_missing_fas, prefetch_sas=True))

TD_SSFTL = jobs.register(SelectionJob(
    "TD-SSFTL", "To Do for pending starts/stops older than the threshold (steps 5.9, 6.0)",
    "SA", lambda c: c.queries.pending_sas_before(old_pending.cutoff(c.admin, c.date())),
    flag_old_pending, prefetch_sas=True))

FANRMRCO = jobs.register(SelectionJob(
    "FANRMRCO", "complete pending field activities from a near regular read, prorated"
    " (step 1.9b)", "FA",
    lambda c: c.queries.pending_fas_up_to(c.date()), complete_with_near_read))

FACOMPL = jobs.register(FaUploadJob())

TD_CCCB = jobs.register(SelectionJob(
    "TD-CCCB", "To Do for customer contact reminders that are due (seed 002)", "contact",
    lambda c: c.queries.contacts_with_reminders_due(c.date()), raise_due_reminders))

STOPUPL = jobs.register(StopUploadJob())
