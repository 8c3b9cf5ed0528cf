"""``FANRMRCO``: complete a pending FA from a recent regular read (step 1.9b).

When a regular meter read was taken within ``installation.near_read_window_days`` of a pending
FA's date, nobody needs to go out: the read at the FA date is prorated from the two regular
reads that bracket it (the latest at or before the FA's instant, the earliest at or after it),
by straight-line interpolation in time. The FA's instant is the start of its scheduled date in
the installation's base time zone, the moment a start or stop takes effect.

The prorated value is stored once as a ``system_prorated`` meter read and completes every pending
FA at the same SP on the same date, so the outgoing SA's stop read and the incoming SA's start
read are the same number (no usage lost or billed twice between tenants).

No usable pair (no regular read on one side, or a later read lower than the earlier one, as
after a meter exchange) raises one ``fa_near_read`` To Do on the FA, but only once the window
after the FA date has passed: until then the read that closes the bracket may still come in.
An FA with no regular read near its date at all is left to the field crew (``FACOMPL``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sync.ccb.batches.common import ItemOutcome, Result, raise_batch_todo, resolve_todos
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.model import DrillKey, FaStatus, FieldActivity, MeterRead, ReadType
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

CODE = "FANRMRCO"


def fa_instant(admin: AdminConfig, fa: FieldActivity) -> dt.datetime:
    """When the FA's start or stop takes effect: the start of its date, base time zone."""
    return dt.datetime.combine(fa.scheduled_date, dt.time(0, 0),
                               tzinfo=ZoneInfo(admin.installation.base_time_zone))


def bracketing_reads(reads: Sequence[MeterRead], at: dt.datetime
                     ) -> tuple[MeterRead | None, MeterRead | None]:
    """The latest regular read at or before ``at`` and the earliest at or after it."""
    regular = [read for read in reads if read.read_type is ReadType.REGULAR]
    before = max((r for r in regular if r.read_at <= at), key=lambda r: r.read_at, default=None)
    after = min((r for r in regular if r.read_at >= at), key=lambda r: r.read_at, default=None)
    return before, after


def interpolate_read(before: MeterRead, after: MeterRead, at: dt.datetime) -> float:
    """The register value at ``at`` on the straight line between two reads (3 decimals)."""
    if not before.read_at <= at <= after.read_at:
        raise InvalidCommand("meter read", before.id, "read_at",
                             f"{at.isoformat()} is not between {before.read_at.isoformat()}"
                             f" and {after.read_at.isoformat()} (read {after.id})")
    span = (after.read_at - before.read_at).total_seconds()
    if span == 0:
        return round(before.value, 3)
    share = (at - before.read_at).total_seconds() / span
    return round(before.value + (after.value - before.value) * share, 3)


def _pair_problem(before: MeterRead | None, after: MeterRead | None,
                  at: dt.datetime) -> str | None:
    if before is None:
        return f"no regular read at or before {at.isoformat()}"
    if after is None:
        return f"no regular read at or after {at.isoformat()}"
    if after.value < before.value:
        return (f"read {after.id} ({after.value}) is lower than the earlier read {before.id}"
                f" ({before.value})")
    return None


def complete_with_near_read(work: Work, fa_id: str) -> ItemOutcome:
    fa = work.field_activity(fa_id)
    if fa is None:
        raise NotFound("FA", fa_id, "fa_id")
    if fa.status is not FaStatus.PENDING:
        return ItemOutcome("FA", fa.id, Result.UNCHANGED, f"{fa.status.value}, not pending")
    if fa.scheduled_date > work.today:
        return ItemOutcome("FA", fa.id, Result.UNCHANGED, "scheduled later")
    window_days = work.admin.installation.near_read_window_days
    window = dt.timedelta(days=window_days)
    at = fa_instant(work.admin, fa)
    reads = work.reads_of_sp(fa.sp_id)
    if not any(read.read_type is ReadType.REGULAR and abs(read.read_at - at) <= window
               for read in reads):
        return ItemOutcome("FA", fa.id, Result.UNCHANGED,
                           f"no regular read within {window_days} days")
    before, after = bracketing_reads(reads, at)
    problem = _pair_problem(before, after, at)
    if problem is not None:
        if work.today <= fa.scheduled_date + window:
            return ItemOutcome("FA", fa.id, Result.UNCHANGED, f"waiting: {problem}")
        message = (f"FA {fa.id} ({fa.fa_type}, SP {fa.sp_id}, {fa.scheduled_date.isoformat()})"
                   f" cannot be completed from a near read: {problem}")
        created = raise_batch_todo(work, "fa_near_read", DrillKey(kind="fa", id=fa.id), message)
        return ItemOutcome("FA", fa.id, Result.TODO if created else Result.UNCHANGED, problem)
    assert before is not None
    assert after is not None
    value = interpolate_read(before, after, at)
    completed = _complete_at_sp(work, fa, at, value)
    return ItemOutcome("FA", fa.id, Result.CHANGED,
                       f"completed {', '.join(completed)} with prorated read {value}"
                       f" (from {before.id} and {after.id})")


def _complete_at_sp(work: Work, fa: FieldActivity, at: dt.datetime, value: float) -> list[str]:
    """Complete ``fa`` and every other pending FA at its SP on its date with one read."""
    read = MeterRead(id=work.new_id("READ"), sp_id=fa.sp_id, read_at=at, value=value,
                     read_type=ReadType.SYSTEM_PRORATED)
    work.changes.put_read(read)
    sa_ids = sorted({link.sa_id for link in work.links_at_sp(fa.sp_id)} | {fa.sa_id})
    same_visit = [other for sa_id in sa_ids for other in work.field_activities_of_sa(sa_id)
                  if other.sp_id == fa.sp_id and other.scheduled_date == fa.scheduled_date
                  and other.status is FaStatus.PENDING]
    completed: list[str] = []
    for other in sorted(same_visit, key=lambda item: item.id):
        work.save_field_activity(other.model_copy(update={
            "status": FaStatus.COMPLETE, "completed_at": at, "completion_read": value}))
        resolve_todos(work, DrillKey(kind="fa", id=other.id), ("fa_near_read",),
                      f"completed by {CODE} with prorated read {read.id}")
        completed.append(other.id)
    work.note(f"read {read.id} ({value}, system prorated) at SP {fa.sp_id} completes "
              + ", ".join(completed))
    return completed
