"""``TD-SSFTL``: a To Do for pending starts/stops that have gone unfulfilled (steps 5.9, 6.0).

Age is measured from the SA's own date: a pending start whose start date, or a pending stop
whose stop date, lies more than ``installation.old_pending_threshold_days`` before the business
date is still pending long after it should have happened (usually fieldwork never completed).
It gets one open ``old_pending`` To Do; ``SAACT`` completes it when the SA finally moves on.
"""

from __future__ import annotations

import datetime as dt

from sync.ccb.batches.common import ItemOutcome, Result, batch_sa, raise_batch_todo
from sync.ccb.model import DrillKey, SaStatus
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

CODE = "TD-SSFTL"


def cutoff(admin: AdminConfig, today: dt.date) -> dt.date:
    """Pending SAs dated before this day are old."""
    return today - dt.timedelta(days=admin.installation.old_pending_threshold_days)


def flag_old_pending(work: Work, sa_id: str) -> ItemOutcome:
    sa = batch_sa(work, sa_id)
    if sa.status is SaStatus.PENDING_START:
        what, date = "start", sa.start_date
    elif sa.status is SaStatus.PENDING_STOP and sa.end_date is not None:
        what, date = "stop", sa.end_date
    else:
        return ItemOutcome("SA", sa.id, Result.UNCHANGED,
                           f"status {sa.status.value} ({sa.status.label}): not pending")
    limit = cutoff(work.admin, work.today)
    if date >= limit:
        return ItemOutcome("SA", sa.id, Result.UNCHANGED, f"pending {what} is recent")
    age = (work.today - date).days
    threshold = work.admin.installation.old_pending_threshold_days
    message = (f"pending {what} of SA {sa.id} ({sa.sa_type}) dated {date.isoformat()} is still"
               f" pending {age} days later (threshold {threshold} days)")
    if raise_batch_todo(work, "old_pending", DrillKey(kind="sa", id=sa.id), message):
        return ItemOutcome("SA", sa.id, Result.TODO, message)
    return ItemOutcome("SA", sa.id, Result.UNCHANGED, "To Do already open")
