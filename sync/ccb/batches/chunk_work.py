"""The work of a batch chunk: one :class:`~sync.ccb.work.Work` for hundreds of items.

:class:`Work` answers a list read ("the SAs of this account") with the stored list plus every
entity of its pending changes that belongs to it, found by looking at each pending entity. That
is right for a command, which changes a handful of entities; in a batch chunk, where every item
adds its own changes, it makes the chunk's cost grow with the square of its size. ChunkWork
answers the same reads from indexes of the pending changes by the attribute the read filters
on, kept up to date from :meth:`~sync.ccb.changes.Changes.puts_of`. The answers are the same
lists in the same order: the stored entities (pending versions substituted), then the pending
ones that are not stored, in the order they were first put.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from sync.ccb.batches.set_based import SetBasedChanges
from sync.ccb.changes import Changes
from sync.ccb.model import (
    Budget,
    CollectionProcess,
    DrillKey,
    FieldActivity,
    FinancialTransaction,
    SaSpLink,
    ServiceAgreement,
    SeveranceProcess,
    ToDoEntry,
    ToDoStatus,
)
from sync.ccb.work import Work

T = TypeVar("T")


class _Index:
    """Pending entities of one collection by the value of ``key(entity)``."""

    def __init__(self, collection: str, key: Callable[[Any], object]) -> None:
        self.collection = collection
        self.key = key
        self._read = 0  # how many of the collection's puts are indexed
        self._key_of: dict[str, object] = {}
        self._members: dict[object, set[str]] = defaultdict(set)
        self._first_put: dict[str, int] = {}

    def ids(self, changes: Changes, value: object) -> list[str]:
        """Ids of the pending entities whose key is ``value``, in first-put order."""
        puts = changes.puts_of(self.collection)
        if self._read < len(puts):
            table = changes.table(self.collection)
            for entity_id in puts[self._read:]:
                self._first_put.setdefault(entity_id, len(self._first_put))
                key = self.key(table[entity_id])
                old = self._key_of.get(entity_id, _NONE)
                if old != key:
                    if old is not _NONE:
                        self._members[old].discard(entity_id)
                    self._members[key].add(entity_id)
                    self._key_of[entity_id] = key
            self._read = len(puts)
        members = self._members.get(value)
        return sorted(members, key=self._first_put.__getitem__) if members else []


_NONE = object()


def _overlay(base: list[T], pending: dict[str, Any], ids: list[str]) -> list[T]:
    """What :func:`sync.ccb.work._overlay` returns, given the pending ids that match."""
    result: list[T] = []
    seen: set[str] = set()
    for item in base:
        key: str = getattr(item, "id")  # noqa: B009
        seen.add(key)
        result.append(pending.get(key, item))
    result.extend(pending[key] for key in ids if key not in seen)
    return result


class ChunkWork(Work):
    """:class:`Work` whose list reads cost the same however many items the chunk holds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A chunk may also carry row updates decided without models (set-based path).
        self.changes: SetBasedChanges = SetBasedChanges()
        self._indexes: dict[str, _Index] = {}

    def _pending(self, collection: str, attribute: str, value: object) -> list[str]:
        index = self._indexes.get(f"{collection}.{attribute}")
        if index is None:
            index = _Index(collection, lambda entity: getattr(entity, attribute))
            self._indexes[f"{collection}.{attribute}"] = index
        return index.ids(self.changes, value)

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        return _overlay(self.base.sas_of_account(account_id), self.changes.sas,
                        self._pending("sas", "account_id", account_id))

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]:
        return _overlay(self.base.sas_at_premise(premise_id), self.changes.sas,
                        self._pending("sas", "premise_id", premise_id))

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]:
        return _overlay(self.base.sub_sas(master_sa_id), self.changes.sas,
                        self._pending("sas", "master_sa_id", master_sa_id))

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        return _overlay(self.base.links_of_sa(sa_id), self.changes.links,
                        self._pending("links", "sa_id", sa_id))

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]:
        return _overlay(self.base.links_at_sp(sp_id), self.changes.links,
                        self._pending("links", "sp_id", sp_id))

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]:
        return _overlay(self.base.field_activities_of_sa(sa_id), self.changes.field_activities,
                        self._pending("field_activities", "sa_id", sa_id))

    def financial_transactions_of_sa(self, sa_id: str) -> list[FinancialTransaction]:
        return _overlay(self.base.financial_transactions_of_sa(sa_id),
                        self.changes.financial_transactions,
                        self._pending("financial_transactions", "sa_id", sa_id))

    def budgets_of_account(self, account_id: str) -> list[Budget]:
        return _overlay(self.base.budgets_of_account(account_id), self.changes.budgets,
                        self._pending("budgets", "account_id", account_id))

    def collection_processes_of_account(self, account_id: str) -> list[CollectionProcess]:
        return _overlay(self.base.collection_processes_of_account(account_id),
                        self.changes.collection_processes,
                        self._pending("collection_processes", "account_id", account_id))

    def severance_processes_of_sa(self, sa_id: str) -> list[SeveranceProcess]:
        return _overlay(self.base.severance_processes_of_sa(sa_id),
                        self.changes.severance_processes,
                        self._pending("severance_processes", "sa_id", sa_id))

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None:
        # Work: the first pending entry of the type and key decides (None when complete).
        index = self._indexes.get("todos.open")
        if index is None:
            index = _Index("todos", lambda todo: (todo.todo_type, todo.drill_key.kind,
                                                  todo.drill_key.id))
            self._indexes["todos.open"] = index
        ids = index.ids(self.changes, (todo_type, drill_key.kind, drill_key.id))
        if ids:
            todo = self.changes.todos[ids[0]]
            return todo if todo.status is not ToDoStatus.COMPLETE else None
        return self.base.open_todo(todo_type, drill_key)
