"""Row updates a batch chunk decides as plain values, for the store to write set-based.

A chunk's :class:`~sync.ccb.changes.Changes` carry models; the set-based path of ``SAACT``
(:mod:`sync.ccb.batches.saact_fast`) decides a few column updates per SA instead, without
building the models. They travel in :class:`SetBasedChanges` with the rest of the unit of work
and are written in the same transaction; ``changed`` holds their entries like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sync.ccb.changes import Changes
from sync.ccb.model import SaStatus

if TYPE_CHECKING:
    from sync.ccb.batches.saact_fast import SaFacts


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


@dataclass
class SetBasedChanges(Changes):
    """:class:`Changes` plus the row updates of the set-based path, in item order."""

    sa_updates: list[SaStatusUpdate] = field(default_factory=list)
    final_bill_flags: list[FinalBillFlag] = field(default_factory=list)

    def is_empty(self) -> bool:
        return super().is_empty() and not self.sa_updates and not self.final_bill_flags
