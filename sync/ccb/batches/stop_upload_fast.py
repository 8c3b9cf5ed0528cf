"""``STOPUPL``'s set-based path for the common stop request (steps 1.1-1.9): what
:func:`~sync.ccb.batches.stop_upload.request_stop_row` decides for a row that stops one active
SA which nothing else shares, decided from plain values.

Most rows of a mass move-out name one active SA whose premise and service points serve nobody
else now (earlier tenants' stopped SAs aside). For such a row the general rules do the same
few things: the SA goes to pending stop with the stop date and one audit entry, its links
without a stop date take it, and the customer contact ``STOPSVC`` is recorded on the
account's main person. Deciding that through models (read the account's whole neighbourhood,
validate every row, copy the SA, dump its audit log again) costs several times the change.
:func:`fast_stops` picks the rows for which the outcome is certain from a handful of facts
(:class:`StopFacts`, read for the whole chunk by the store) and :func:`apply_fast_stop`
records the same outcome, ``changed`` entry, note and contact in the chunk's work, with the SA
and link updates as plain values (:class:`~sync.ccb.batches.set_based.StopRequested`).

Anything else goes through the general rules in the same unit of work, which also report
every refusal: a row naming a premise or several SAs, an SA that is not active, has an end
date, a master or sub SAs, or belongs to another account; an SA type that needs fieldwork; a
stop date before the start, back-dated too far, or (with the immediate stop algorithm) already
reached; another live SA (pending start, active, pending stop) at the premise or at one of
the service points (a reversion, a next tenant), or any overlap the general rules' last
check would report there (earlier tenants' stopped SAs are fine); a premise with a landlord
agreement or a parent premise (the reversion table); a missing main person or premise, an
unknown contact method; algorithms other than the ones whose effect is known; an account or
SA named by another row of the chunk (whose rules could read or change it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sync.ccb.batches.common import ItemOutcome
from sync.ccb.batches.set_based import (
    SaRowFacts,
    SetBasedChanges,
    StopRequested,
    audit_entry,
)
from sync.ccb.batches.stop_upload import StopRequestRow, stop_command, stop_requested
from sync.ccb.changes import SA
from sync.ccb.contacts import CONTACT_METHODS, checked_contact
from sync.ccb.coverage import Span, first_overlap
from sync.ccb.lifecycle import Action
from sync.ccb.model import IN_SERVICE, CreatedBy, SaStatus
from sync.ccb.stop_start import (
    CUSTOMER,
    STOP_CONTACT,
    earliest_stop_date,
    stop_contact_comments,
)
from sync.ccb.work import Work
from sync.config.admin import AdminConfig, FaCreation

# The algorithms whose effect on such a row is known: the fieldwork algorithm creates nothing
# for an SA type without fieldwork; the reversion algorithm nothing without a landlord
# agreement or another SA at the premise; the immediate stop nothing before the stop date.
KNOWN_FIELDWORK = frozenset({None, "C2M-SASPFWCR"})
KNOWN_REVERSION = frozenset({None, "C2M-LL-REV"})
KNOWN_IMMEDIATE_STOP = frozenset({None, "C1-SAIS-ST"})


@dataclass(frozen=True)
class LinkPeriod:
    """A link at a service point: whose, and the days ``[start_date, stop_date)`` it covers.
    ``status`` and ``sa_type`` are those of the link's SA."""

    link_id: str
    sp_id: str
    sa_id: str
    sa_type: str
    status: str
    start_date: dt.date
    stop_date: dt.date | None


@dataclass(frozen=True, kw_only=True)
class StopFacts(SaRowFacts):
    """What the set-based path needs to know about the SA a row names."""

    premise_id: str | None
    main_person_id: str
    main_person_found: bool
    premise_found: bool
    premise_may_revert: bool  # a landlord agreement or a parent premise (whose agreement counts)
    live_sa_at_premise: bool  # another SA at the SA's premise in a live status
    links: tuple[LinkPeriod, ...]  # the SA's own links
    others_at_service_points: tuple[LinkPeriod, ...]  # other SAs' links at its service points

    @property
    def open_link_ids(self) -> tuple[str, ...]:
        """The SA's links without a stop date: they take the SA's."""
        return tuple(link.link_id for link in self.links if link.stop_date is None)


def fast_stop(row: StopRequestRow, facts: StopFacts | None, admin: AdminConfig,
              today: dt.date, user: str, shared: bool = False) -> bool:
    """Whether the row's outcome is certain from the facts (the general rules decide
    otherwise); ``shared``: another row of the chunk names the same account or SA."""
    if shared or facts is None or len(row.sa_ids) != 1 or row.premise_id is not None \
            or not user.strip():
        return False
    algorithms = admin.algorithms
    if algorithms.fieldwork not in KNOWN_FIELDWORK \
            or algorithms.reversion not in KNOWN_REVERSION \
            or algorithms.immediate_stop not in KNOWN_IMMEDIATE_STOP:
        return False
    sa_type = admin.sa_types.get(facts.sa_type)
    if sa_type is None or (sa_type.fieldwork_required and algorithms.fieldwork is not None
                           and admin.installation.fa_creation is FaCreation.AT_REQUEST):
        return False
    if facts.account_id != row.account_id or facts.status != SaStatus.ACTIVE.value \
            or facts.end_date is not None or facts.master_sa_id is not None \
            or facts.has_sub_sas:
        return False
    if row.stop_date < facts.start_date or row.stop_date < earliest_stop_date(admin, today):
        return False
    if algorithms.immediate_stop is not None and row.stop_date <= today:
        return False
    if facts.live_sa_at_premise or facts.premise_may_revert \
            or not _service_points_clear(facts, admin, row.stop_date):
        return False
    if STOP_CONTACT in admin.contact_types:
        method = stop_command(row, user).contact_method
        if not facts.main_person_id or not facts.main_person_found \
                or method not in CONTACT_METHODS:
            return False
    return facts.premise_id is None or facts.premise_found


def _service_points_clear(facts: StopFacts, admin: AdminConfig, stop_date: dt.date) -> bool:
    """No other SA in service at the SA's service points (a next tenant, another tenant for
    the reversion rules), and the overlap check the general rules end with
    (:func:`~sync.ccb.coverage.check_no_overlap`) finds nothing at them once the SA's open
    links stop on ``stop_date``: the history of earlier tenants stays out of the way."""
    # The rows' status codes are the statuses' values: a StrEnum member equals its value.
    if any(other.status in IN_SERVICE for other in facts.others_at_service_points):
        return False
    own_type = admin.sa_types[facts.sa_type].service_type
    by_point: dict[str, list[Span]] = {}
    for link in facts.links:
        by_point.setdefault(link.sp_id, []).append(Span(
            facts.sa_id, own_type, link.start_date,
            stop_date if link.stop_date is None else link.stop_date))
    for other in facts.others_at_service_points:
        if other.status == SaStatus.CANCELED.value:
            continue  # a canceled SA covers nothing
        known = admin.sa_types.get(other.sa_type)
        if known is None:
            return False  # the general check cannot place it: let it say so
        by_point.setdefault(other.sp_id, []).append(
            Span(other.sa_id, known.service_type, other.start_date, other.stop_date))
    return all(first_overlap(spans) is None for spans in by_point.values())


def fast_stops(rows: Sequence[StopRequestRow], facts: Mapping[str, StopFacts],
               admin: AdminConfig, today: dt.date,
               user: str) -> dict[str, tuple[StopRequestRow, StopFacts]]:
    """The chunk's rows (by key) that take the set-based path, with their SA's facts."""
    accounts = Counter(row.account_id for row in rows)
    sas = Counter(sa_id for row in rows for sa_id in row.sa_ids)
    chosen: dict[str, tuple[StopRequestRow, StopFacts]] = {}
    for row in rows:
        fact = facts.get(row.sa_ids[0]) if len(row.sa_ids) == 1 else None
        shared = accounts[row.account_id] > 1 or any(sas[sa_id] > 1 for sa_id in row.sa_ids)
        if fact is not None and fast_stop(row, fact, admin, today, user, shared):
            chosen[str(row.row)] = (row, fact)
    return chosen


@lru_cache(maxsize=4)
def _stopped_by(by: CreatedBy) -> Mapping[str, Any]:
    return by.model_dump(mode="json")


def apply_fast_stop(work: Work, row: StopRequestRow, facts: StopFacts) -> ItemOutcome:
    """Record what :func:`~sync.ccb.batches.stop_upload.request_stop_row` records for the
    row, the SA and link updates as plain values."""
    changes = work.changes
    assert isinstance(changes, SetBasedChanges)
    command = stop_command(row, work.user)
    day = command.stop_date.isoformat()
    # set_stop: the transition, then the links; the SA's own entry in ``changed``.
    entry = audit_entry(work, Action.REQUEST_STOP.value, SaStatus.ACTIVE,
                        SaStatus.PENDING_STOP, f"stop date {day}")
    changes.stop_requests.append(StopRequested(
        facts, command.stop_date, _stopped_by(CUSTOMER), entry, facts.version + 1,
        facts.open_link_ids))
    changes.record_change(SA, facts.sa_id)
    work.note(f"SA {facts.sa_id} {Action.REQUEST_STOP.value}: {day}")
    contact_type = work.admin.contact_types.get(STOP_CONTACT)
    if contact_type is not None:
        work.save_contact(checked_contact(
            work.ids, contact_type, person_id=facts.main_person_id, contact_type=STOP_CONTACT,
            method=command.contact_method, user=work.user, now=work.now,
            account_id=facts.account_id, premise_id=facts.premise_id,
            comments=stop_contact_comments(command.stop_date, [facts.sa_id])))
    return stop_requested(row, [facts.sa_id])
