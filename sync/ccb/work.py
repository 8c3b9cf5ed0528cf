"""The state of one command as it proceeds: what it read plus what it has decided so far.

Commands compose (a stop re-evaluates reversion, which may start a landlord SA, whose fieldwork
is created, ...); each step must see the earlier steps' decisions. :class:`Work` is a
:class:`~sync.ccb.ports.CcbView` that reads through the pending :class:`Changes` first, and the
only place that sets the optimistic ``version`` of what it saves (read version + 1, or 1 for a
new entity), however many times one command saves the same entity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from sync.ccb.changes import Changes
from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    CustomerContact,
    DrillKey,
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
)
from sync.ccb.ports import CcbView, IdSource
from sync.config.admin import AdminConfig

T = TypeVar("T")


def _overlay(base: list[T], pending: dict[str, T], keep: Callable[[T], bool]) -> list[T]:
    """``base`` with pending versions substituted, plus pending entities matching ``keep``."""
    result: list[T] = []
    seen: set[str] = set()
    for item in base:
        key: str = getattr(item, "id")  # noqa: B009
        seen.add(key)
        result.append(pending.get(key, item))
    result.extend(item for key, item in pending.items() if key not in seen and keep(item))
    return result


class Work:
    """One command's unit of work over a :class:`CcbView`."""

    def __init__(self, view: CcbView, ids: IdSource, admin: AdminConfig, today: dt.date,
                 now: dt.datetime, user: str) -> None:
        self.base = view
        # Ids drawn in this unit name entities that cannot be stored yet: saving one need
        # not read the store to learn that it is new.
        self._drawn: set[str] = set()
        self.ids: IdSource = _DrawnIds(ids, self._drawn)
        self.admin = admin
        self.today = today
        self.now = now
        self.user = user
        self.changes = Changes()

    # --- CcbView, read-through ---------------------------------------------------------------

    def person(self, person_id: str) -> Person | None:
        return self.changes.persons.get(person_id) or self.base.person(person_id)

    def account(self, account_id: str) -> Account | None:
        return self.changes.accounts.get(account_id) or self.base.account(account_id)

    def premise(self, premise_id: str) -> Premise | None:
        return self.changes.premises.get(premise_id) or self.base.premise(premise_id)

    def child_premises(self, parent_premise_id: str) -> list[Premise]:
        found = _overlay(self.base.child_premises(parent_premise_id), self.changes.premises,
                         lambda p: p.parent_premise_id == parent_premise_id)
        return [p for p in found if p.parent_premise_id == parent_premise_id]

    def service_point(self, sp_id: str) -> ServicePoint | None:
        return self.changes.service_points.get(sp_id) or self.base.service_point(sp_id)

    def service_points_at(self, premise_id: str) -> list[ServicePoint]:
        return _overlay(self.base.service_points_at(premise_id), self.changes.service_points,
                        lambda sp: sp.premise_id == premise_id)

    def landlord_agreement(self, agreement_id: str) -> LandlordAgreement | None:
        return (self.changes.landlord_agreements.get(agreement_id)
                or self.base.landlord_agreement(agreement_id))

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        return self.changes.sas.get(sa_id) or self.base.sa(sa_id)

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        return _overlay(self.base.sas_of_account(account_id), self.changes.sas,
                        lambda sa: sa.account_id == account_id)

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]:
        return _overlay(self.base.sas_at_premise(premise_id), self.changes.sas,
                        lambda sa: sa.premise_id == premise_id)

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]:
        return _overlay(self.base.sub_sas(master_sa_id), self.changes.sas,
                        lambda sa: sa.master_sa_id == master_sa_id)

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        return _overlay(self.base.links_of_sa(sa_id), self.changes.links,
                        lambda link: link.sa_id == sa_id)

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]:
        return _overlay(self.base.links_at_sp(sp_id), self.changes.links,
                        lambda link: link.sp_id == sp_id)

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]:
        return _overlay(self.base.field_activities_of_sa(sa_id), self.changes.field_activities,
                        lambda fa: fa.sa_id == sa_id)

    def field_activity(self, fa_id: str) -> FieldActivity | None:
        return self.changes.field_activities.get(fa_id) or self.base.field_activity(fa_id)

    def reads_of_sp(self, sp_id: str) -> list[MeterRead]:
        reads = _overlay(self.base.reads_of_sp(sp_id), self.changes.reads,
                         lambda read: read.sp_id == sp_id)
        return sorted(reads, key=lambda read: read.read_at)

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None:
        for todo in self.changes.todos.values():
            if todo.todo_type == todo_type and todo.drill_key == drill_key:
                return todo if todo.status != "complete" else None
        return self.base.open_todo(todo_type, drill_key)

    def todo(self, todo_id: str) -> ToDoEntry | None:
        return self.changes.todos.get(todo_id) or self.base.todo(todo_id)

    def contact(self, contact_id: str) -> CustomerContact | None:
        return self.changes.contacts.get(contact_id) or self.base.contact(contact_id)

    def financial_transaction(self, ft_id: str) -> FinancialTransaction | None:
        return (self.changes.financial_transactions.get(ft_id)
                or self.base.financial_transaction(ft_id))

    def financial_transactions_of_sa(self, sa_id: str) -> list[FinancialTransaction]:
        return _overlay(self.base.financial_transactions_of_sa(sa_id),
                        self.changes.financial_transactions, lambda ft: ft.sa_id == sa_id)

    def budget(self, budget_id: str) -> Budget | None:
        return self.changes.budgets.get(budget_id) or self.base.budget(budget_id)

    def collection_process(self, process_id: str) -> CollectionProcess | None:
        return (self.changes.collection_processes.get(process_id)
                or self.base.collection_process(process_id))

    def severance_process(self, process_id: str) -> SeveranceProcess | None:
        return (self.changes.severance_processes.get(process_id)
                or self.base.severance_process(process_id))

    def budgets_of_account(self, account_id: str) -> list[Budget]:
        return _overlay(self.base.budgets_of_account(account_id), self.changes.budgets,
                        lambda budget: budget.account_id == account_id)

    def collection_processes_of_account(self, account_id: str) -> list[CollectionProcess]:
        return _overlay(self.base.collection_processes_of_account(account_id),
                        self.changes.collection_processes,
                        lambda process: process.account_id == account_id)

    def severance_processes_of_sa(self, sa_id: str) -> list[SeveranceProcess]:
        return _overlay(self.base.severance_processes_of_sa(sa_id),
                        self.changes.severance_processes,
                        lambda process: process.sa_id == sa_id)

    # --- saving ------------------------------------------------------------------------------

    def _versioned(self, entity: Any, stored_by_id: Callable[[str], Any],
                   pending_by_id: dict[str, Any]) -> Any:
        """``entity`` with the version it is written at: the one already given to it if this
        unit saved it before, 1 if it is new, else one above the version the rules read.

        The read version, not the stored one: on PostgreSQL (read committed) the stored one,
        read now, may be another unit's commit made since the rules read the entity; writing one
        above it would overwrite that change unseen. One above the version read is refused at
        persist when the stored version moved on."""
        pending = pending_by_id.get(entity.id)
        if pending is not None:
            version = pending.version
        elif entity.id in self._drawn or stored_by_id(entity.id) is None:
            version = 1
        else:
            version = entity.version + 1
        return entity if entity.version == version else entity.model_copy(
            update={"version": version})

    def save_sa(self, sa: ServiceAgreement) -> ServiceAgreement:
        saved: ServiceAgreement = self._versioned(sa, self.base.sa, self.changes.sas)
        self.changes.put_sa(saved)
        return saved

    def save_account(self, account: Account) -> Account:
        saved: Account = self._versioned(account, self.base.account, self.changes.accounts)
        self.changes.put_account(saved)
        return saved

    def save_person(self, person: Person) -> Person:
        saved: Person = self._versioned(person, self.base.person, self.changes.persons)
        self.changes.put_person(saved)
        return saved

    def save_premise(self, premise: Premise) -> Premise:
        saved: Premise = self._versioned(premise, self.base.premise, self.changes.premises)
        self.changes.put_premise(saved)
        return saved

    def save_contact(self, contact: CustomerContact) -> CustomerContact:
        saved: CustomerContact = self._versioned(contact, self.base.contact, self.changes.contacts)
        self.changes.put_contact(saved)
        return saved

    def save_financial_transaction(self, ft: FinancialTransaction) -> FinancialTransaction:
        saved: FinancialTransaction = self._versioned(
            ft, self.base.financial_transaction, self.changes.financial_transactions)
        self.changes.put_financial_transaction(saved)
        return saved

    def save_budget(self, budget: Budget) -> Budget:
        saved: Budget = self._versioned(budget, self.base.budget, self.changes.budgets)
        self.changes.put_budget(saved)
        return saved

    def save_collection_process(self, process: CollectionProcess) -> CollectionProcess:
        saved: CollectionProcess = self._versioned(
            process, self.base.collection_process, self.changes.collection_processes)
        self.changes.put_collection_process(saved)
        return saved

    def save_severance_process(self, process: SeveranceProcess) -> SeveranceProcess:
        saved: SeveranceProcess = self._versioned(
            process, self.base.severance_process, self.changes.severance_processes)
        self.changes.put_severance_process(saved)
        return saved

    def save_link(self, link: SaSpLink) -> SaSpLink:
        self.changes.put_link(link)
        return link

    def save_field_activity(self, activity: FieldActivity) -> FieldActivity:
        self.changes.put_field_activity(activity)
        return activity

    def new_id(self, kind: str) -> str:
        return self.ids.next_id(kind)

    def note(self, line: str) -> None:
        self.changes.note(line)


class _DrawnIds:
    """An :class:`IdSource` that remembers every id it hands out."""

    def __init__(self, ids: IdSource, drawn: set[str]) -> None:
        self._ids = ids
        self._drawn = drawn

    def next_id(self, kind: str) -> str:
        new = self._ids.next_id(kind)
        self._drawn.add(new)
        return new

