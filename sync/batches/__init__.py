"""Batch jobs: the registry, the chunked runner, reports and the schedule loop.

This is the application layer between the CCB batch rules (``sync.ccb.batches``, pure) and the
entry points (``c2m-sync batch``, the benchmark): it selects items through the store's batch
queries and runs the rules over them in chunked units of work.
"""

from sync.batches.ports import BatchQueries, NoProgress, Progress, Selection, UnitStore
from sync.batches.registry import (
    BatchJob,
    BatchUsageError,
    JobContext,
    JobRegistry,
    jobs,
    load_jobs,
    takes_file,
)
from sync.batches.report import BatchReport, ItemError
from sync.batches.run_locks import BatchBusyError, BatchLockLostError, RunLease, RunLocks

__all__ = [
    "BatchBusyError",
    "BatchJob",
    "BatchLockLostError",
    "BatchQueries",
    "BatchReport",
    "BatchUsageError",
    "ItemError",
    "JobContext",
    "JobRegistry",
    "NoProgress",
    "Progress",
    "RunLease",
    "RunLocks",
    "Selection",
    "UnitStore",
    "jobs",
    "load_jobs",
    "takes_file",
]
