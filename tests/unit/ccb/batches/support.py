"""Running the batch jobs against the in-memory store of the lifecycle tests' small world."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sync.batches import BatchReport, JobContext, load_jobs
from sync.batches.memory import MemoryBatchQueries
from sync.ccb.model import FaPurpose, FaStatus, FieldActivity, ToDoEntry, ToDoStatus
from sync.clock import FixedClock
from tests.unit.ccb.world import World


def run_batch(world: World, code: str, today: dt.date, *, file: Path | None = None,
              chunk_size: int = 500) -> BatchReport:
    context = JobContext(admin=world.admin, clock=FixedClock(today, time_zone="UTC"),
                         store=world.store, queries=MemoryBatchQueries(world.store),
                         file=file, chunk_size=chunk_size)
    return load_jobs().run(code, context)


def todos(world: World, todo_type: str | None = None,
          status: ToDoStatus | None = None) -> list[ToDoEntry]:
    found = [entry for entry in world.store.state()["todos"].values()
             if isinstance(entry, ToDoEntry)]
    return sorted((entry for entry in found
                   if (todo_type is None or entry.todo_type == todo_type)
                   and (status is None or entry.status is status)), key=lambda e: e.id)


def pending_fas(world: World, sa_id: str, purpose: FaPurpose) -> list[FieldActivity]:
    return [fa for fa in world.fas(sa_id, purpose) if fa.status is FaStatus.PENDING]
