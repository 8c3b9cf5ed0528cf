"""The batch job registry: what ``c2m-sync batch list/run/schedule`` offers.

A job is anything with a ``code``, a ``description`` and ``run(context) -> BatchReport``
(:class:`BatchJob`), and a true ``takes_file`` when it reads an upload file (:func:`takes_file`);
adding one is a :meth:`JobRegistry.register` call in the module that
defines it, plus that module's name in :data:`JOB_MODULES`. The context hands the job
everything it may use: settings, admin data, the clock and the run's business date, the CCB
store and its batch queries, the ``--file`` option and a progress callback.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from sync.batches.ports import BatchQueries, NoProgress, Progress, UnitStore
from sync.batches.report import BatchReport
from sync.batches.run_locks import KeptLease, RunLease, RunLocks
from sync.batches.runner import ChunkedRunner
from sync.clock import Clock
from sync.config.admin import AdminConfig
from sync.config.settings import Settings

# Modules that register jobs when imported (the lead's sync jobs are added here).
JOB_MODULES = ("sync.batches.ccb_jobs", "sync.pipeline.sync_jobs")

DEFAULT_CHUNK_SIZE = 500


class BatchUsageError(ValueError):
    """A batch asked for something it cannot do (unknown code, a missing or unreadable
    ``--file``); nothing was run."""


@dataclass
class JobContext:
    admin: AdminConfig
    clock: Clock
    store: UnitStore
    queries: BatchQueries
    settings: Settings | None = None
    file: Path | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    progress: Progress = field(default_factory=NoProgress)
    business_date: dt.date | None = None  # None: the clock's business date
    # Set to ask the run to end after the unit of work under way (SIGTERM, an operator's
    # cancel); the report then says it stopped. Never set: the run goes to the end.
    stop: threading.Event = field(default_factory=threading.Event)
    # The database's locks that keep a job to one run at a time
    # (:func:`sync.storage.run_locks.run_locks_for`). None only for a store no other run can
    # reach (the tests' stores in memory).
    locks: RunLocks | None = None
    # The held lock of the run under way, checked before every unit of work (set by
    # :meth:`JobRegistry.run`).
    lease: RunLease = field(default_factory=KeptLease)

    def date(self) -> dt.date:
        return self.business_date if self.business_date is not None \
            else self.clock.business_date()

    def runner(self, code: str) -> ChunkedRunner:
        """A runner whose units of work are done by user ``code`` on the run's date."""
        return ChunkedRunner(self.store, self.admin, self.clock, self.date(), code,
                             self.progress, self.stop, self.lease)

    def should_stop(self) -> bool:
        """Whether the run is asked to stop, for a job's own loop to call between its units
        of work; :class:`~sync.batches.run_locks.BatchLockLostError` if its lock has gone."""
        self.lease.check()
        return self.stop.is_set()


def takes_file(job: BatchJob) -> bool:
    """Whether ``job`` reads an upload file (``context.file``): a job that does says so with a
    true ``takes_file`` attribute, so that a job without one needs nothing more than the
    protocol below."""
    return getattr(job, "takes_file", False) is True


class BatchJob(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def description(self) -> str: ...

    def run(self, context: JobContext) -> BatchReport: ...


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: dict[str, BatchJob] = {}

    def register(self, job: BatchJob) -> BatchJob:
        existing = self._jobs.get(job.code)
        if existing is not None and existing is not job:
            raise ValueError(f"batch {job.code!r} is already registered ({existing!r})")
        self._jobs[job.code] = job
        return job

    def get(self, code: str) -> BatchJob:
        try:
            return self._jobs[code]
        except KeyError:
            known = ", ".join(self._jobs) or "none"
            raise BatchUsageError(f"unknown batch {code!r} (known: {known})") from None

    def all(self) -> list[BatchJob]:
        return list(self._jobs.values())

    def check_file(self, code: str, file_given: bool) -> BatchJob:
        """The job ``code``; :class:`BatchUsageError` for an unknown code, or when a file is
        given to a job that reads none (``--file``, the API's ``upload``): it would be ignored
        without a word, and the operator would believe it applied."""
        job = self.get(code)
        if file_given and not takes_file(job):
            takers = ", ".join(other.code for other in self.all() if takes_file(other))
            raise BatchUsageError(f"batch {code} takes no --file (only {takers or 'none'})")
        return job

    def run(self, code: str, context: JobContext) -> BatchReport:
        """Run one job, holding its lock over the database, and time it; a
        :class:`~sync.batches.run_locks.BatchBusyError` if another run holds the lock, a
        :class:`~sync.batches.run_locks.BatchLockLostError` if the lock goes during the run."""
        job = self.check_file(code, context.file is not None)
        holding = context.locks.hold(code) if context.locks is not None \
            else nullcontext(KeptLease())
        with holding as lease:
            started = time.perf_counter()
            report = job.run(replace(context, lease=lease))
            report.seconds = time.perf_counter() - started
        return report


jobs = JobRegistry()


def load_jobs() -> JobRegistry:
    """The registry with every job module imported."""
    for module in JOB_MODULES:
        importlib.import_module(module)
    return jobs
