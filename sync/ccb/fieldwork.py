"""Field activities for pending starts and stops (steps 1.2, 1.6; algorithm ``C2M-SASPFWCR``).

When an SA type requires fieldwork, each SA/SP link gets one start FA (on start) and one stop FA
(on stop), whose FA type comes from the SP type's profile (an SP type without a profile needs no
fieldwork). The installation decides whether they are created at request time or later by the
pending monitor (``PSASPM``, which calls :func:`create_missing_field_activities`). FAs follow the
SA's date changes and are canceled with the request they serve. An SA needing fieldwork moves on
(activate, stop) only when each of its FAs is complete with a read; that read becomes the link's
start or stop read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from sync.algorithms import Spot, registry
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.model import (
    FaPurpose,
    FaStatus,
    FieldActivity,
    MeterRead,
    ReadType,
    SaSpLink,
    ServiceAgreement,
)
from sync.ccb.work import Work
from sync.config.admin import FaCreation

FieldworkAlgorithm = Callable[[Work, ServiceAgreement, FaPurpose], list[FieldActivity]]


def needs_fieldwork(work: Work, sa: ServiceAgreement) -> bool:
    return work.admin.sa_types[sa.sa_type].fieldwork_required


def fa_type_for(work: Work, link: SaSpLink, purpose: FaPurpose) -> str | None:
    """The FA type the SP's type profile names for ``purpose`` (None: no fieldwork there)."""
    sp = work.service_point(link.sp_id)
    if sp is None:
        return None
    sp_type = work.admin.sp_types.get(sp.sp_type)
    if sp_type is None or sp_type.fa_types is None:
        return None
    return sp_type.fa_types.start if purpose is FaPurpose.START else sp_type.fa_types.stop


def _live(work: Work, sa: ServiceAgreement, purpose: FaPurpose) -> list[FieldActivity]:
    return [fa for fa in work.field_activities_of_sa(sa.id)
            if fa.purpose is purpose and fa.status is not FaStatus.CANCELED]


@registry.implements(Spot.FIELDWORK, "C2M-SASPFWCR")
def create_missing_field_activities(work: Work, sa: ServiceAgreement,
                                    purpose: FaPurpose) -> list[FieldActivity]:
    """One FA per SA/SP link that has none yet for ``purpose``, scheduled on the SA's date."""
    if not needs_fieldwork(work, sa):
        return []
    date = sa.start_date if purpose is FaPurpose.START else sa.end_date
    if date is None:
        return []
    covered = {fa.sa_sp_link_id for fa in _live(work, sa, purpose)}
    created: list[FieldActivity] = []
    for link in work.links_of_sa(sa.id):
        fa_type = fa_type_for(work, link, purpose)
        if fa_type is None or link.id in covered:
            continue
        activity = FieldActivity(id=work.new_id("FA"), fa_type=fa_type, sp_id=link.sp_id,
                                 sa_id=sa.id, sa_sp_link_id=link.id, purpose=purpose,
                                 scheduled_date=date)
        created.append(work.save_field_activity(activity))
        work.note(f"FA {activity.id} ({fa_type}) created for SA {sa.id} at SP {link.sp_id}"
                  f" on {date.isoformat()}")
    return created


def fieldwork_at_request(work: Work, sa: ServiceAgreement, purpose: FaPurpose) -> None:
    """Run the installation's fieldwork algorithm now, if FAs are created at request time."""
    code = work.admin.algorithms.fieldwork
    if code is None or work.admin.installation.fa_creation is not FaCreation.AT_REQUEST:
        return
    algorithm: FieldworkAlgorithm = registry.get(Spot.FIELDWORK, code)
    algorithm(work, sa, purpose)


def reschedule_field_activities(work: Work, sa: ServiceAgreement, purpose: FaPurpose,
                                date: dt.date) -> None:
    for fa in _live(work, sa, purpose):
        if fa.status is FaStatus.PENDING and fa.scheduled_date != date:
            work.save_field_activity(fa.model_copy(update={"scheduled_date": date}))


def cancel_field_activities(work: Work, sa: ServiceAgreement, purpose: FaPurpose) -> None:
    for fa in _live(work, sa, purpose):
        if fa.status is FaStatus.PENDING:
            work.save_field_activity(fa.model_copy(update={"status": FaStatus.CANCELED}))
            work.note(f"FA {fa.id} canceled")


def missing_fieldwork(work: Work, sa: ServiceAgreement, purpose: FaPurpose) -> str | None:
    """Why the SA cannot move on for lack of fieldwork, or None when nothing is missing."""
    if not needs_fieldwork(work, sa):
        return None
    done = {fa.sa_sp_link_id for fa in _live(work, sa, purpose)
            if fa.status is FaStatus.COMPLETE and fa.completion_read is not None}
    for link in work.links_of_sa(sa.id):
        if fa_type_for(work, link, purpose) is not None and link.id not in done:
            return f"{purpose.value} FA with a read missing for SP {link.sp_id!r}"
    return None


def apply_completion_reads(work: Work, sa: ServiceAgreement, purpose: FaPurpose) -> None:
    """Copy each complete FA's read onto its SA/SP link as the start or stop read."""
    reads = {fa.sa_sp_link_id: fa.completion_read for fa in _live(work, sa, purpose)
             if fa.status is FaStatus.COMPLETE and fa.completion_read is not None}
    field = "start_read" if purpose is FaPurpose.START else "stop_read"
    for link in work.links_of_sa(sa.id):
        if link.id in reads:
            work.save_link(link.model_copy(update={field: reads[link.id]}))


def complete_field_activity(work: Work, fa_id: str, read_value: float,
                            completed_at: dt.datetime) -> FieldActivity:
    """Complete a pending FA with the read taken in the field (also kept as a meter read)."""
    fa = work.field_activity(fa_id)
    if fa is None:
        raise NotFound("FA", fa_id, "fa_id")
    if fa.status is not FaStatus.PENDING:
        raise InvalidCommand("FA", fa_id, "status", f"is {fa.status.value}, not pending")
    if not math.isfinite(read_value):
        # NaN passes every comparison below and infinity would be stored as a read: each
        # entry point refuses them, and this keeps one that forgets from writing them.
        raise InvalidCommand("FA", fa_id, "completion_read",
                             f"{read_value} is not a finite number")
    if read_value < 0:
        raise InvalidCommand("FA", fa_id, "completion_read", "a read cannot be negative")
    completed = work.save_field_activity(fa.model_copy(update={
        "status": FaStatus.COMPLETE, "completed_at": completed_at,
        "completion_read": read_value}))
    read = MeterRead(id=work.new_id("READ"), sp_id=fa.sp_id, read_at=completed_at,
                     value=read_value, read_type=ReadType.REGULAR)
    work.changes.put_read(read)
    work.note(f"FA {fa_id} complete with read {read_value}")
    return completed
