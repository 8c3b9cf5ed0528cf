"""Row updates a batch chunk decides as plain values, for the store to write set-based.

A chunk's :class:`~sync.ccb.changes.Changes` carry models; the set-based paths of ``SAACT``
(:mod:`sync.ccb.batches.saact_fast`) and of ``STOPUPL`` (:mod:`sync.ccb.batches.stop_upload_fast`)
decide a few column updates per SA instead, without building the models. They travel in
:class:`SetBasedChanges` with the rest of the unit of work and are written in the same
transaction; ``changed`` holds their entries like any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sync.ccb.changes import Changes
from sync.ccb.model import AuditEntry, SaStatus
from sync.ccb.work import Work

if TYPE_CHECKING:
    from sync.ccb.batches.saact_fast import SaFacts
    from sync.ccb.batches.stop_upload_fast import StopFacts


@lru_cache(maxsize=64)
def _template(at: dt.datetime, user: str, action: str, from_status: SaStatus,
              to_status: SaStatus) -> Mapping[str, Any]:
    return AuditEntry(at=at, user=user, action=action, from_status=from_status,
                      to_status=to_status, details="").model_dump(mode="json")


def audit_entry(work: Work, action: str, from_status: SaStatus, to_status: SaStatus,
                details: str) -> Mapping[str, Any]:
    """The audit entry's JSON document, as the SA's row holds it (the model is dumped once
    per chunk and kind of entry)."""
    return {**_template(work.now, work.user, action, from_status, to_status),
            "details": details}


@dataclass(frozen=True, kw_only=True)
class SaRowFacts:
    """What every set-based path reads of a chunk's SA, as plain values; each path adds the
    facts its rules need.

    ``stored`` carries the rows the SA's sync snapshot is built from and its audit log as read
    (the store's business: the rules never look at it)."""

    sa_id: str
    account_id: str
    sa_type: str
    status: str
    start_date: dt.date
    end_date: dt.date | None
    master_sa_id: str | None
    version: int
    has_sub_sas: bool
    stored: Any = None


@dataclass(frozen=True)
class SaStatusUpdate:
    """An SA moved on by the set-based path: its new status, the entries appended to its
    audit log (as the log's JSON document holds them) and its new version."""

    facts: SaFacts
    status: SaStatus
    entries: tuple[Mapping[str, Any], ...]
    version: int


@dataclass(frozen=True)
class FinalBillFlag:
    account_id: str
    version: int  # the version written (read + 1)


@dataclass(frozen=True)
class StopRequested:
    """An active SA put to pending stop by the set-based path: its stop date, who stopped it
    (the JSON document), the audit entry appended, its new version, and the links whose stop
    date becomes the SA's (those without one)."""

    facts: StopFacts
    stop_date: dt.date
    stopped_by: Mapping[str, Any]
    entry: Mapping[str, Any]
    version: int
    link_ids: tuple[str, ...]


@dataclass
class SetBasedChanges(Changes):
    """:class:`Changes` plus the row updates of the set-based paths, in item order."""

    sa_updates: list[SaStatusUpdate] = field(default_factory=list)
    final_bill_flags: list[FinalBillFlag] = field(default_factory=list)
    stop_requests: list[StopRequested] = field(default_factory=list)

    def is_empty(self) -> bool:
        return super().is_empty() and not self.sa_updates and not self.final_bill_flags \
            and not self.stop_requests
