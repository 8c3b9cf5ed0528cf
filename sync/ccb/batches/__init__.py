"""The CCB batch rules (SPEC.md section 4, "Batch processes"), one module per batch.

Each batch is a *step*: a pure function ``step(work, item_id) -> ItemOutcome`` that looks at one
item (an SA, an FA, a contact, an upload row) through a :class:`~sync.ccb.work.Work` and records
what must change in ``work.changes``. The application layer (``sync.batches``) selects the
items, runs the steps in chunked units of work and counts the outcomes; nothing here reads a
database, a file or the clock.
"""

from sync.ccb.batches.activation import activate_or_stop
from sync.ccb.batches.common import BatchStep, ChunkDecision, ItemOutcome, Result, decide_chunk
from sync.ccb.batches.fa_upload import FaCompletionRow, RowProblem, complete_row, parse_upload
from sync.ccb.batches.near_read import complete_with_near_read, interpolate_read
from sync.ccb.batches.old_pending import flag_old_pending
from sync.ccb.batches.pending_monitor import create_missing_fas, needs_fieldwork_types
from sync.ccb.batches.reminders import raise_due_reminders
from sync.ccb.batches.stop_upload import StopRequestRow, parse_stop_rows, request_stop_row

__all__ = [
    "BatchStep",
    "ChunkDecision",
    "FaCompletionRow",
    "ItemOutcome",
    "Result",
    "RowProblem",
    "StopRequestRow",
    "activate_or_stop",
    "complete_row",
    "complete_with_near_read",
    "create_missing_fas",
    "decide_chunk",
    "flag_old_pending",
    "interpolate_read",
    "needs_fieldwork_types",
    "parse_stop_rows",
    "parse_upload",
    "raise_due_reminders",
    "request_stop_row",
]
