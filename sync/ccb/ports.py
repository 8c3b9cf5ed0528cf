"""Ports of the CCB domain: read access to CCB state and a source of new ids.

A command is a pure function of a :class:`CcbView` (state as read inside one unit of work), an
:class:`IdSource`, the admin configuration, its input and the business date/time; it returns a
:class:`~sync.ccb.changes.Changes` that the store persists in the same transaction. Stores offer
``execute(fn)`` where ``fn`` is a :data:`CcbUnitOfWork`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

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

if TYPE_CHECKING:
    from sync.ccb.changes import Changes


class CcbView(Protocol):
    """Read access to CCB state inside one unit of work."""

    def person(self, person_id: str) -> Person | None: ...

    def account(self, account_id: str) -> Account | None: ...

    def premise(self, premise_id: str) -> Premise | None: ...

    def child_premises(self, parent_premise_id: str) -> list[Premise]: ...

    def service_point(self, sp_id: str) -> ServicePoint | None: ...

    def service_points_at(self, premise_id: str) -> list[ServicePoint]: ...

    def landlord_agreement(self, agreement_id: str) -> LandlordAgreement | None: ...

    def sa(self, sa_id: str) -> ServiceAgreement | None: ...

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]: ...

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]: ...

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]: ...

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]: ...

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]: ...

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]: ...

    def field_activity(self, fa_id: str) -> FieldActivity | None: ...

    def reads_of_sp(self, sp_id: str) -> list[MeterRead]: ...

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None: ...

    def todo(self, todo_id: str) -> ToDoEntry | None: ...

    def contact(self, contact_id: str) -> CustomerContact | None: ...

    def financial_transaction(self, ft_id: str) -> FinancialTransaction | None: ...

    def financial_transactions_of_sa(self, sa_id: str) -> list[FinancialTransaction]: ...

    def budget(self, budget_id: str) -> Budget | None: ...

    def budgets_of_account(self, account_id: str) -> list[Budget]: ...

    def collection_process(self, process_id: str) -> CollectionProcess | None: ...

    def collection_processes_of_account(self, account_id: str) -> list[CollectionProcess]: ...

    def severance_process(self, process_id: str) -> SeveranceProcess | None: ...

    def severance_processes_of_sa(self, sa_id: str) -> list[SeveranceProcess]: ...


class IdSource(Protocol):
    def next_id(self, kind: str) -> str:
        """A new id for an entity of ``kind`` ("SA", "LINK", "FA", "TODO", "CONTACT", ...)."""
        ...


CcbUnitOfWork = Callable[[CcbView, IdSource], "Changes"]
"""What a store's ``execute`` runs: read through the view, return the changes to persist."""
