"""What the batch jobs need from the outside: a store to run units of work, the batch queries,
and somewhere to report progress."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Protocol

from sync.ccb.changes import Changes
from sync.ccb.ports import CcbUnitOfWork, CcbView


class UnitStore(Protocol):
    """Runs one unit of work atomically (the SQL and the in-memory CCB stores)."""

    def execute(self, fn: CcbUnitOfWork) -> Changes: ...


class Selection(Protocol):
    """The ids a batch works through, read a chunk at a time (never all at once)."""

    def count(self) -> int: ...

    def chunks(self, size: int) -> Iterator[list[str]]: ...


class BatchQueries(Protocol):
    """The selections of the CCB batches. Each is read in short transactions of its own, in
    a stable order, resuming after the last id returned, so that items the run has already
    changed are not returned again."""

    def due_pending_sas(self, business_date: dt.date) -> Selection:
        """Pending starts dated on or before ``business_date``, then such pending stops."""
        ...

    def pending_sas_up_to(self, last_date: dt.date, sa_types: Sequence[str]) -> Selection:
        """Pending starts/stops of ``sa_types`` whose start or stop date is ``<= last_date``."""
        ...

    def pending_sas_before(self, cutoff: dt.date) -> Selection:
        """Pending starts whose start date, and pending stops whose stop date, is before
        ``cutoff``."""
        ...

    def pending_fas_up_to(self, last_date: dt.date) -> Selection:
        """Pending FAs scheduled on or before ``last_date``."""
        ...

    def contacts_with_reminders_due(self, business_date: dt.date) -> Selection: ...

    def prefetch_sas(self, view: CcbView, sa_ids: Sequence[str]) -> CcbView:
        """A view answering the usual per-SA reads for ``sa_ids`` from a few bulk queries
        (the SAs, their links, FAs, sub SAs, accounts, open To Dos); ``view`` itself when the
        store has nothing better."""
        ...

    def prefetch_accounts(self, view: CcbView, account_ids: Sequence[str]) -> CcbView:
        """A view answering a stop request's reads about ``account_ids`` (their SAs, links,
        service points, premises up the parent chain, landlord agreements, everyone else at
        those premises and SPs) from a few bulk queries; ``view`` itself when the store has
        nothing better."""
        ...


class Progress(Protocol):
    def start(self, description: str, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...


class NoProgress:
    def start(self, description: str, total: int | None) -> None:
        return None

    def advance(self, count: int) -> None:
        return None
