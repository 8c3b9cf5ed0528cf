"""The batch selections over the in-memory CCB store (fast tests, the demo)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import FaStatus, SaStatus, ServiceAgreement
from sync.ccb.ports import CcbView

Keys = Callable[[], list[tuple[Any, str]]]


class MemorySelection:
    """Same contract as the SQL keyset selection: each page is recomputed from the current
    state and resumes after the last (key, id) returned."""

    def __init__(self, *parts: Keys) -> None:
        self._parts = parts

    def count(self) -> int:
        return sum(len(part()) for part in self._parts)

    def chunks(self, size: int) -> Iterator[list[str]]:
        for part in self._parts:
            last: tuple[Any, str] | None = None
            while True:
                page = sorted(key for key in part() if last is None or key > last)[:size]
                if not page:
                    break
                yield [item_id for _key, item_id in page]
                last = page[-1]


class MemoryBatchQueries:
    def __init__(self, store: InMemoryCcb) -> None:
        self._store = store

    def _sas(self, keep: Callable[[ServiceAgreement], bool],
             key: Callable[[ServiceAgreement], Any]) -> Keys:
        return lambda: [(key(sa), sa.id) for sa in self._store.all_sas() if keep(sa)]

    def due_pending_sas(self, business_date: dt.date) -> MemorySelection:
        return MemorySelection(
            self._sas(lambda sa: sa.status is SaStatus.PENDING_START
                      and sa.start_date <= business_date, lambda sa: sa.start_date),
            self._sas(lambda sa: sa.status is SaStatus.PENDING_STOP and sa.end_date is not None
                      and sa.end_date <= business_date, lambda sa: sa.end_date))

    def pending_sas_up_to(self, last_date: dt.date, sa_types: Sequence[str]) -> MemorySelection:
        types = set(sa_types)
        return MemorySelection(
            self._sas(lambda sa: sa.status is SaStatus.PENDING_START and sa.sa_type in types
                      and sa.start_date <= last_date, lambda sa: sa.start_date),
            self._sas(lambda sa: sa.status is SaStatus.PENDING_STOP and sa.sa_type in types
                      and sa.end_date is not None and sa.end_date <= last_date,
                      lambda sa: sa.end_date))

    def pending_sas_before(self, cutoff: dt.date) -> MemorySelection:
        return MemorySelection(
            self._sas(lambda sa: sa.status is SaStatus.PENDING_START
                      and sa.start_date < cutoff, lambda sa: sa.start_date),
            self._sas(lambda sa: sa.status is SaStatus.PENDING_STOP and sa.end_date is not None
                      and sa.end_date < cutoff, lambda sa: sa.end_date))

    def pending_fas_up_to(self, last_date: dt.date) -> MemorySelection:
        return MemorySelection(lambda: [
            (fa.scheduled_date, fa.id) for fa in self._store.all_field_activities()
            if fa.status is FaStatus.PENDING and fa.scheduled_date <= last_date])

    def contacts_with_reminders_due(self, business_date: dt.date) -> MemorySelection:
        def keys() -> list[tuple[Any, str]]:
            found = []
            for contact in self._store.all_contacts():
                due = [r.trigger_date for r in contact.reminders if not r.sent]
                if due and min(due) <= business_date:
                    found.append((min(due), contact.id))
            return found

        return MemorySelection(keys)

    def prefetch_sas(self, view: CcbView, sa_ids: Sequence[str]) -> CcbView:
        return view

    def prefetch_accounts(self, view: CcbView, account_ids: Sequence[str]) -> CcbView:
        return view
