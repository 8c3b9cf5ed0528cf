"""A dict-backed CCB store for fast tests and the property tests.

It offers the same ``execute(fn)`` as the SQL store: the command reads a snapshot, returns its
:class:`~sync.ccb.changes.Changes`, and the changes are applied all at once after the same
optimistic version checks the SQL store makes; any error leaves the state untouched. The outbox
hook is the ``entity_changes`` list (one entry per ``Changes.changed`` entry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sync.ccb.changes import ENTITY_TABLES, Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    CustomerContact,
    DrillKey,
    Entity,
    FieldActivity,
    FinancialTransaction,
    LandlordAgreement,
    MeterRead,
    Person,
    Premise,
    SaSpLink,
    ServiceAgreement,
    ServicePoint,
    SeveranceProcess,
    ToDoEntry,
    ToDoStatus,
)
from sync.ccb.ports import CcbView, IdSource


class _Tables(Changes):
    """The stored state: one collection per entity kind, the same shape as a unit of work's
    :class:`Changes` (its ``changed`` and ``notes`` stay unused here)."""

    def table_for(self, entity: Entity) -> dict[str, Entity]:
        for name, kind in ENTITY_TABLES.items():
            if isinstance(entity, kind):
                return self.table(name)
        raise TypeError(f"no table for {type(entity).__name__}")

    def copy_tables(self) -> _Tables:
        copy = _Tables()
        for name in ENTITY_TABLES:
            copy.table(name).update(self.table(name))
        return copy


_ENTITY_NAME = {
    "persons": "person", "accounts": "account", "premises": "premise",
    "service_points": "service point", "landlord_agreements": "landlord agreement",
    "sas": "SA", "todos": "To Do", "contacts": "contact",
    "financial_transactions": "financial transaction", "budgets": "budget",
    "collection_processes": "collection process", "severance_processes": "severance process",
}


class _SnapshotView:
    """A :class:`CcbView` over one frozen copy of the tables."""

    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    def person(self, person_id: str) -> Person | None:
        return self._t.persons.get(person_id)

    def account(self, account_id: str) -> Account | None:
        return self._t.accounts.get(account_id)

    def premise(self, premise_id: str) -> Premise | None:
        return self._t.premises.get(premise_id)

    def child_premises(self, parent_premise_id: str) -> list[Premise]:
        return [p for p in self._t.premises.values() if p.parent_premise_id == parent_premise_id]

    def service_point(self, sp_id: str) -> ServicePoint | None:
        return self._t.service_points.get(sp_id)

    def service_points_at(self, premise_id: str) -> list[ServicePoint]:
        return [sp for sp in self._t.service_points.values() if sp.premise_id == premise_id]

    def landlord_agreement(self, agreement_id: str) -> LandlordAgreement | None:
        return self._t.landlord_agreements.get(agreement_id)

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        return self._t.sas.get(sa_id)

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        return [sa for sa in self._t.sas.values() if sa.account_id == account_id]

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]:
        return [sa for sa in self._t.sas.values() if sa.premise_id == premise_id]

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]:
        return [sa for sa in self._t.sas.values() if sa.master_sa_id == master_sa_id]

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        return [link for link in self._t.links.values() if link.sa_id == sa_id]

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]:
        return [link for link in self._t.links.values() if link.sp_id == sp_id]

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]:
        return [fa for fa in self._t.field_activities.values() if fa.sa_id == sa_id]

    def field_activity(self, fa_id: str) -> FieldActivity | None:
        return self._t.field_activities.get(fa_id)

    def reads_of_sp(self, sp_id: str) -> list[MeterRead]:
        return sorted((r for r in self._t.reads.values() if r.sp_id == sp_id),
                      key=lambda read: read.read_at)

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None:
        for todo in self._t.todos.values():
            if (todo.todo_type == todo_type and todo.drill_key == drill_key
                    and todo.status is not ToDoStatus.COMPLETE):
                return todo
        return None

    def todo(self, todo_id: str) -> ToDoEntry | None:
        return self._t.todos.get(todo_id)

    def contact(self, contact_id: str) -> CustomerContact | None:
        return self._t.contacts.get(contact_id)

    def financial_transaction(self, ft_id: str) -> FinancialTransaction | None:
        return self._t.financial_transactions.get(ft_id)

    def financial_transactions_of_sa(self, sa_id: str) -> list[FinancialTransaction]:
        return [ft for ft in self._t.financial_transactions.values() if ft.sa_id == sa_id]

    def budget(self, budget_id: str) -> Budget | None:
        return self._t.budgets.get(budget_id)

    def collection_process(self, process_id: str) -> CollectionProcess | None:
        return self._t.collection_processes.get(process_id)

    def severance_process(self, process_id: str) -> SeveranceProcess | None:
        return self._t.severance_processes.get(process_id)

    def budgets_of_account(self, account_id: str) -> list[Budget]:
        return [b for b in self._t.budgets.values() if b.account_id == account_id]

    def collection_processes_of_account(self, account_id: str) -> list[CollectionProcess]:
        return [p for p in self._t.collection_processes.values()
                if p.account_id == account_id]

    def severance_processes_of_sa(self, sa_id: str) -> list[SeveranceProcess]:
        return [p for p in self._t.severance_processes.values() if p.sa_id == sa_id]


class InMemoryCcb(_SnapshotView):
    """Dict-backed :class:`CcbView` and :class:`IdSource` with an atomic ``execute``."""

    def __init__(self) -> None:
        super().__init__(_Tables())
        self._counters: dict[str, int] = {}
        self.entity_changes: list[tuple[str, str]] = []

    # --- setup (bypasses commands: loading existing data, as a conversion would) ------------

    def add(self, *entities: Entity) -> None:
        for entity in entities:
            self._t.table_for(entity)[getattr(entity, "id")] = entity  # noqa: B009

    # --- IdSource ---------------------------------------------------------------------------

    def next_id(self, kind: str) -> str:
        taken = self._ids_in_use()
        while True:
            self._counters[kind] = self._counters.get(kind, 0) + 1
            candidate = f"{kind}-{self._counters[kind]}"
            if candidate not in taken:
                return candidate

    def _ids_in_use(self) -> set[str]:
        return {key for name in ENTITY_TABLES for key in self._t.table(name)}

    # --- unit of work -----------------------------------------------------------------------

    def execute(self, fn: Callable[[CcbView, IdSource], Changes]) -> Changes:
        """Run ``fn`` against a snapshot and apply its changes atomically (or not at all)."""
        snapshot = _SnapshotView(self._t.copy_tables())
        changes = fn(snapshot, self)
        self._check_versions(changes)
        for name in ENTITY_TABLES:
            self._t.table(name).update(changes.table(name))
        self.entity_changes.extend(changes.changed)
        return changes

    def _check_versions(self, changes: Changes) -> None:
        for name in ENTITY_TABLES:
            current = self._t.table(name)
            for entity_id, entity in changes.table(name).items():
                version = getattr(entity, "version", None)
                if version is None:
                    continue
                stored = current.get(entity_id)
                stored_version = None if stored is None else getattr(stored, "version", None)
                expected = None if version == 1 else version - 1
                if stored_version != expected:
                    raise ConcurrentUpdateError(entity_id, _ENTITY_NAME.get(name, name),
                                                expected)

    # --- test conveniences ------------------------------------------------------------------

    def all_sas(self) -> list[ServiceAgreement]:
        return list(self._t.sas.values())

    def all_links(self) -> list[SaSpLink]:
        return list(self._t.links.values())

    def all_contacts(self) -> list[CustomerContact]:
        return list(self._t.contacts.values())

    def all_field_activities(self) -> list[FieldActivity]:
        return list(self._t.field_activities.values())

    def state(self) -> dict[str, dict[str, Any]]:
        """A comparable copy of every table (to assert that a failed command changed nothing)."""
        return {name: dict(self._t.table(name)) for name in ENTITY_TABLES}

