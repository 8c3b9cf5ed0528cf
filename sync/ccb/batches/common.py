"""What every batch step shares: its outcome, the chunk it runs in, and To Do housekeeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sync.ccb.batches.chunk_work import ChunkWork
from sync.ccb.changes import Changes
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.model import DrillKey, ServiceAgreement, ToDoLogEntry, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.todo import SYSTEM_USER, raise_todo, todo_type_code
from sync.ccb.work import Work
from sync.config.admin import AdminConfig


class Result(StrEnum):
    CHANGED = "changed"  # the item moved on (activated, stopped, FA created or completed, ...)
    TODO = "todo"  # it cannot move on: an open To Do says why
    UNCHANGED = "unchanged"  # nothing to do for it (not due, already handled, To Do open)


@dataclass(frozen=True)
class ItemOutcome:
    entity: str  # "SA", "FA", "contact", "row"
    entity_id: str
    result: Result
    detail: str = ""
    # Other items this one moved on with it (a due master SA activated before its sub SA).
    also_changed: tuple[str, ...] = ()


BatchStep = Callable[[Work, str], ItemOutcome]
"""One batch rule applied to one item; records its changes in ``work.changes``."""

Shortcut = Callable[[Work], ItemOutcome]
"""An item's outcome decided ahead (a set-based path): records it in ``work.changes``."""


@dataclass(frozen=True)
class ChunkDecision:
    changes: Changes
    outcomes: tuple[ItemOutcome, ...]


def decide_chunk(view: CcbView, ids: IdSource, admin: AdminConfig, today: dt.date,
                 now: dt.datetime, user: str, item_ids: Sequence[str],
                 step: BatchStep,
                 shortcuts: Mapping[str, Shortcut] | None = None) -> ChunkDecision:
    """Apply ``step`` to each item in turn in one unit of work; later items see the earlier
    items' decisions (an SA stopped earlier in the chunk is stopped for the next one). An item
    with a ``shortcut`` is recorded by it instead, in its place in the order."""
    work = ChunkWork(view, ids, admin, today, now, user)
    shortcuts = shortcuts or {}
    outcomes = tuple(shortcuts[item_id](work) if item_id in shortcuts else step(work, item_id)
                     for item_id in item_ids)
    return ChunkDecision(work.changes, outcomes)


def batch_sa(work: Work, sa_id: str) -> ServiceAgreement:
    """The SA a batch step works on, refused with a clear reason when the data is unusable
    (an SA type the admin data does not know would otherwise fail deep in a rule)."""
    sa = work.sa(sa_id)
    if sa is None:
        raise NotFound("SA", sa_id, "sa_id")
    if sa.sa_type not in work.admin.sa_types:
        raise InvalidCommand("SA", sa.id, "sa_type",
                             f"unknown SA type {sa.sa_type!r} (not in the admin data sa_types)")
    return sa


def raise_batch_todo(work: Work, purpose: str, drill_key: DrillKey, message: str,
                     *, role: str | None = None) -> bool:
    """Raise the To Do for ``purpose`` unless one is open for the key; True when created."""
    raised = raise_todo(work, work.ids, work.admin, purpose, drill_key, message, work.now,
                        role=role, changes=work.changes)
    return raised.created


def resolve_todos(work: Work, drill_key: DrillKey, purposes: Sequence[str],
                  resolution: str) -> None:
    """Complete the open To Dos the batches raised for ``drill_key`` once the exception they
    report is gone, so that the worklist only shows what still needs a person."""
    for purpose in purposes:
        if purpose not in work.admin.todo_for:
            continue
        entry = work.open_todo(todo_type_code(work.admin, purpose), drill_key)
        if entry is None or entry.status is ToDoStatus.COMPLETE:
            continue
        # One above the version read (the entry saved earlier in this unit keeps its version):
        # a version re-read now could be another unit's commit, which this one would overwrite.
        version = entry.version if entry.id in work.changes.todos else entry.version + 1
        log = (*entry.log, ToDoLogEntry(at=work.now, user=SYSTEM_USER,
                                        comment=f"resolved: {resolution}"))
        work.changes.put_todo(entry.model_copy(update={
            "status": ToDoStatus.COMPLETE, "log": log, "version": version}))
        work.note(f"To Do {entry.id} completed: {resolution}")
