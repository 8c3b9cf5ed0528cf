"""Landlord reversion (algorithm ``C2M-LL-REV``; steps 4.7, 5.3, 5.5, 5.6) and the landlord's
own flow when a new tenant starts (steps 1.0–3.1).

Reversion applies to a tenant's pending stop when the SA type is premise based with reversion
on, the premise (or, for a child premise without its own, its parent) has a landlord agreement
whose preference for the SA's service type is in season on the stop date, and the tenant is not
the landlord. *Next start* is the earliest pending start of anyone but the landlord at the
tenant's SPs on or after the stop date. :func:`evaluate_reversion` derives the landlord SA the
situation calls for and brings the existing one (created by the system, reciprocal = the tenant
SA) in line: created, moved, given or relieved of a pending stop, or canceled. It is idempotent,
so every command that touches starts or stops at an SP simply re-evaluates all tenants there
(:func:`reevaluate_reversion`).

:func:`yield_to_incoming_start` is the other half: a new or moved pending start takes over the
SP from whoever covers the days it needs — a pending stop moves to the new start date, the
landlord's service gets a system-generated pending stop, a landlord pending start that would
begin later is canceled — and anything else (another customer's open service) is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from sync.algorithms import Spot, registry
from sync.ccb.contacts import new_contact
from sync.ccb.coverage import conflicts, service_type_of
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.lifecycle import cancel_start, clear_stop, move_start, set_stop, start_sa
from sync.ccb.model import (
    IN_SERVICE,
    CreatedBy,
    LandlordAgreement,
    SaStatus,
    SeasonalPreference,
    ServiceAgreement,
)
from sync.ccb.ports import CcbView
from sync.ccb.work import Work

REVERSION_REASON = "landlord reversion"
NEW_TENANT_REASON = "new tenant start"
ReversionAlgorithm = Callable[[Work, ServiceAgreement], None]


def effective_landlord_agreement(view: CcbView, premise_id: str) -> LandlordAgreement | None:
    """The premise's own landlord agreement, else the nearest parent's."""
    seen: set[str] = set()
    current = view.premise(premise_id)
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.landlord_agreement_id is not None:
            return view.landlord_agreement(current.landlord_agreement_id)
        if current.parent_premise_id is None:
            return None
        current = view.premise(current.parent_premise_id)
    return None


def in_season(preference: SeasonalPreference, day: dt.date) -> bool:
    """Whether ``day`` lies in the preference's ``MMDD`` window; a window whose end comes
    before its start (``1101``–``0331``) wraps the year end. Non-seasonal rows always apply."""
    if not preference.seasonal or preference.season_start is None \
            or preference.season_end is None:
        return True
    mmdd = day.strftime("%m%d")
    start, end = preference.season_start, preference.season_end
    if start <= end:
        return start <= mmdd <= end
    return mmdd >= start or mmdd <= end


def landlord_account_at(view: CcbView, premise_id: str | None) -> str | None:
    if premise_id is None:
        return None
    agreement = effective_landlord_agreement(view, premise_id)
    return None if agreement is None else agreement.landlord_account_id


def is_landlord_sa(view: CcbView, sa: ServiceAgreement) -> bool:
    """Whether the SA is the landlord's own service at a premise under its agreement."""
    return sa.account_id == landlord_account_at(view, sa.premise_id)


def reversion_agreement(work: Work, tenant: ServiceAgreement) -> LandlordAgreement | None:
    """The agreement the tenant's pending stop reverts to, or None when reversion is off."""
    sa_type = work.admin.sa_types[tenant.sa_type]
    if not (sa_type.premise_based and sa_type.landlord_reversion) or tenant.premise_id is None:
        return None
    if tenant.status is not SaStatus.PENDING_STOP or tenant.end_date is None:
        return None
    agreement = effective_landlord_agreement(work, tenant.premise_id)
    if agreement is None or agreement.landlord_account_id == tenant.account_id:
        return None
    for preference in agreement.preferences:
        if preference.service_type == sa_type.service_type:
            return agreement if in_season(preference, tenant.end_date) else None
    return None


def reverted_sa_of(work: Work, tenant: ServiceAgreement) -> ServiceAgreement | None:
    """The landlord SA the system started for this tenant's stop, while it is still live
    (pending start, active or pending stop); a stopped one is history."""
    candidates = [sa for sa in work.sas_at_premise(tenant.premise_id or "")
                  if sa.created_by.reciprocal_sa_id == tenant.id
                  and sa.created_by.reason == REVERSION_REASON
                  and sa.status in IN_SERVICE]
    return max(candidates, key=lambda sa: sa.id, default=None)


def _tenant_sp_ids(work: Work, tenant: ServiceAgreement) -> list[str]:
    return [link.sp_id for link in work.links_of_sa(tenant.id)
            if link.stop_date == tenant.end_date]


def next_start(work: Work, tenant: ServiceAgreement, landlord_account_id: str,
               sp_ids: Iterable[str]) -> ServiceAgreement | None:
    """The earliest pending start of anyone but the landlord at the SPs on or after the
    tenant's stop date."""
    assert tenant.end_date is not None
    service_type = service_type_of(work.admin, tenant)
    found: list[ServiceAgreement] = []
    for sp_id in sp_ids:
        for link in work.links_at_sp(sp_id):
            sa = work.sa(link.sa_id)
            if (sa is not None and sa.id != tenant.id and sa.status is SaStatus.PENDING_START
                    and sa.account_id != landlord_account_id
                    and service_type_of(work.admin, sa) == service_type
                    and link.start_date >= tenant.end_date):
                found.append(sa)
    return min(found, key=lambda sa: (sa.start_date, sa.id), default=None)


def _retire(work: Work, landlord_sa: ServiceAgreement, why: str) -> None:
    if landlord_sa.status is SaStatus.PENDING_START:
        cancel_start(work, landlord_sa, why)
    elif landlord_sa.status in (SaStatus.ACTIVE, SaStatus.PENDING_STOP) \
            and landlord_sa.end_date != landlord_sa.start_date:
        # Already active: it can no longer be canceled, so it stops where it began.
        set_stop(work, landlord_sa, landlord_sa.start_date,
                 CreatedBy(kind="system", reason=why), details=why)


@registry.implements(Spot.REVERSION, "C2M-LL-REV")
def evaluate_reversion(work: Work, tenant: ServiceAgreement) -> None:
    """Bring the landlord SA for this tenant's stop in line with the reversion table."""
    existing = reverted_sa_of(work, tenant)
    agreement = reversion_agreement(work, tenant)
    if agreement is None or tenant.end_date is None:
        if existing is not None and tenant.status is not SaStatus.STOPPED:
            _retire(work, existing, "reversion no longer applies")
        return
    stop_date = tenant.end_date
    sp_ids = _tenant_sp_ids(work, tenant)
    following = next_start(work, tenant, agreement.landlord_account_id, sp_ids)
    wanted_end: dt.date | None = None
    if following is not None:
        gap = (following.start_date - stop_date).days
        if gap < max(1, work.admin.installation.landlord_min_reversion_days):
            if existing is not None:
                _retire(work, existing, "next tenant starts back-to-back"
                        if gap == 0 else f"gap of {gap} days is below the minimum")
            return
        wanted_end = following.start_date
    end_by = CreatedBy(kind="system", reason=NEW_TENANT_REASON,
                       reciprocal_sa_id=following.id if following else None)
    if existing is None:
        _start_landlord_sa(work, tenant, agreement, sp_ids, stop_date, wanted_end, end_by)
        return
    if existing.start_date != stop_date:
        if existing.status is not SaStatus.PENDING_START:
            raise InvalidCommand("SA", tenant.id, "stop_date",
                                 f"landlord SA {existing.id!r} is already active from"
                                 f" {existing.start_date.isoformat()}; its start cannot follow")
        existing = move_start(work, existing, stop_date, "follows the tenant's stop date")
    if wanted_end is None and existing.end_date is not None:
        clear_stop(work, existing, "no next tenant start any more")
    elif wanted_end is not None and existing.end_date != wanted_end:
        set_stop(work, existing, wanted_end, end_by, details="stops when the next tenant starts")


def _start_landlord_sa(work: Work, tenant: ServiceAgreement, agreement: LandlordAgreement,
                       sp_ids: list[str], start: dt.date, end: dt.date | None,
                       end_by: CreatedBy) -> None:
    if work.account(agreement.landlord_account_id) is None:
        raise NotFound("account", agreement.landlord_account_id,
                       f"landlord agreement {agreement.id} landlord_account_id")
    landlord_sa = start_sa(
        work, account_id=agreement.landlord_account_id, sa_type=tenant.sa_type,
        premise_id=tenant.premise_id, sp_ids=sp_ids, start_date=start,
        created_by=CreatedBy(kind="system", reason=REVERSION_REASON,
                             reciprocal_sa_id=tenant.id),
        details=f"landlord reversion for SA {tenant.id}")
    if end is not None:
        set_stop(work, landlord_sa, end, end_by, details="stops when the next tenant starts")
    work.note(f"landlord reversion: SA {landlord_sa.id} for landlord account"
              f" {agreement.landlord_account_id} from {start.isoformat()}")
    _reversion_notice(work, agreement, landlord_sa)


def _reversion_notice(work: Work, agreement: LandlordAgreement,
                      landlord_sa: ServiceAgreement) -> None:
    """A contact on the landlord (queuing the reversion letter) when the type is configured."""
    if "LLREV" not in work.admin.contact_types \
            or work.person(agreement.landlord_person_id) is None:
        return
    work.save_contact(new_contact(
        work, work.ids, work.admin, person_id=agreement.landlord_person_id,
        contact_type="LLREV", method="letter", user=work.user, now=work.now,
        premise_id=landlord_sa.premise_id,
        comments=f"service reverted to the landlord from {landlord_sa.start_date.isoformat()}"
                 f" (SA {landlord_sa.id})"))


def reevaluate_reversion(work: Work, sp_ids: Iterable[str]) -> None:
    """Run the installation's reversion algorithm for every tenant pending stop at the SPs."""
    code = work.admin.algorithms.reversion
    if code is None:
        return
    algorithm: ReversionAlgorithm = registry.get(Spot.REVERSION, code)
    tenants: dict[str, None] = {}
    for sp_id in sp_ids:
        for link in work.links_at_sp(sp_id):
            sa = work.sa(link.sa_id)
            if sa is not None and sa.status in IN_SERVICE and not is_landlord_sa(work, sa):
                tenants[sa.id] = None
    for sa_id in sorted(tenants, key=_tenant_order(work)):
        current = work.sa(sa_id)
        if current is not None:
            algorithm(work, current)


def _tenant_order(work: Work) -> Callable[[str], tuple[dt.date, str]]:
    def key(sa_id: str) -> tuple[dt.date, str]:
        sa = work.sa(sa_id)
        return (sa.start_date if sa else dt.date.min, sa_id)

    return key


def yield_to_incoming_start(work: Work, incoming: ServiceAgreement) -> None:
    """Make room at the incoming SA's SPs from its start date on (see module docstring)."""
    service_type = service_type_of(work.admin, incoming)
    begin = incoming.start_date
    for link in work.links_of_sa(incoming.id):
        for covered in conflicts(work, work.admin, link.sp_id, service_type, begin,
                                 incoming.end_date, frozenset({incoming.id})):
            other = work.sa(covered.sa.id)
            if other is None:
                continue
            landlord = is_landlord_sa(work, other)
            ends_later = other.end_date is not None
            by = CreatedBy(kind="system", reason=NEW_TENANT_REASON, reciprocal_sa_id=incoming.id)
            if other.start_date < begin and (ends_later or landlord) \
                    and other.status in IN_SERVICE:
                keep = other.stopped_by if (ends_later and not landlord) else None
                set_stop(work, other, begin, keep or by,
                         details=f"new start of SA {incoming.id} on {begin.isoformat()}")
            elif landlord and other.status is SaStatus.PENDING_START:
                cancel_start(work, other, f"superseded by the start of SA {incoming.id}")
            else:
                raise InvalidCommand(
                    "SA", incoming.id, "start_date",
                    f"SP {link.sp_id!r} is served by SA {other.id!r} of account"
                    f" {other.account_id!r} ({other.status.label}) on {begin.isoformat()};"
                    " stop that service first")


def release_landlord_stops(work: Work, canceled_start: ServiceAgreement) -> None:
    """Steps 2.8–2.9: a canceled new-tenant start takes the landlord's pending stop with it."""
    for link in work.links_of_sa(canceled_start.id):
        for other_link in work.links_at_sp(link.sp_id):
            other = work.sa(other_link.sa_id)
            if (other is not None and other.stopped_by is not None
                    and other.stopped_by.reciprocal_sa_id == canceled_start.id
                    and other.status in (SaStatus.PENDING_STOP, SaStatus.PENDING_START)
                    and other.end_date is not None and is_landlord_sa(work, other)):
                clear_stop(work, other, f"start of SA {canceled_start.id} canceled")
