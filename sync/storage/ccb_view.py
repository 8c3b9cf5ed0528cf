"""Reads of CCB state over one SQLAlchemy connection: the SQL ``CcbView`` and the queries the
CLI, the searches and the batches need.

Everything here reads through the connection it is given, so inside a unit of work it sees the
transaction's own state. Lists come back in a stable order (by id unless said otherwise) so that
the SQL store and the in-memory one answer alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select

from sync.ccb.changes import Changes
from sync.ccb.contacts import ReminderView
from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    CustomerContact,
    DrillKey,
    FaStatus,
    FieldActivity,
    FinancialTransaction,
    LandlordAgreement,
    MeterRead,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
    SeveranceProcess,
    ToDoEntry,
    ToDoStatus,
)
from sync.ccb.ports import CcbView
from sync.ccb.search import SearchView
from sync.ccb.todo import ToDoListView
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import select_in
from sync.storage.ccb_schema import EntityTable


class SqlCcbView:
    """A :class:`~sync.ccb.ports.CcbView` (and more) reading through ``connection``."""

    def __init__(self, connection: Connection, written: Changes | None = None) -> None:
        self.connection = connection
        # What the unit of work has just written (for the change hooks): the database holds
        # exactly these entities now, so a reader may use them instead of reading them back.
        self.written = written

    # --- helpers ----------------------------------------------------------------------------

    def _one(self, kind: EntityTable, entity_id: str) -> Any:
        row = self.connection.execute(
            select(kind.table).where(kind.table.c.id == entity_id)).mappings().first()
        return None if row is None else kind.from_row(row)

    def _many(self, kind: EntityTable, *where: ColumnElement[bool],
              order: Sequence[Any] = (), params: Mapping[str, Any] | None = None) -> list[Any]:
        query: Select[Any] = select(kind.table).where(*where)
        query = query.order_by(*order, kind.table.c.id)
        return [kind.from_row(row) for row in self.connection.execute(query, params).mappings()]

    def _many_in(self, kind: EntityTable, column: str, values: Sequence[Any]) -> list[Any]:
        """Every entity of ``kind`` whose ``column`` is one of ``values``, those of each value
        ordered by id (as :meth:`_many` orders a list); no order across values is promised.
        Read through the driver (``bulk_sql.select_in``) with the columns converted as
        SQLAlchemy converts them: the bulk reads of a unit of many commands spent more in
        SQLAlchemy's handling of each IN list and row than in the database."""
        names = kind.column_names
        return [kind.from_row(dict(zip(names, row, strict=True)))
                for row in select_in(self.connection, kind.table, names, column,
                                     list(dict.fromkeys(values)), order_by=("id",))]

    # --- CcbView ------------------------------------------------------------------------------

    def person(self, person_id: str) -> Person | None:
        found: Person | None = self._one(schema.PERSONS, person_id)
        return found

    def account(self, account_id: str) -> Account | None:
        found: Account | None = self._one(schema.ACCOUNTS, account_id)
        return found

    def premise(self, premise_id: str) -> Premise | None:
        found: Premise | None = self._one(schema.PREMISES, premise_id)
        return found

    def child_premises(self, parent_premise_id: str) -> list[Premise]:
        return self._many(schema.PREMISES,
                          schema.premises.c.parent_premise_id == parent_premise_id)

    def service_point(self, sp_id: str) -> ServicePoint | None:
        found: ServicePoint | None = self._one(schema.SERVICE_POINTS, sp_id)
        return found

    def service_points_at(self, premise_id: str) -> list[ServicePoint]:
        return self._many(schema.SERVICE_POINTS,
                          schema.service_points.c.premise_id == premise_id)

    def landlord_agreement(self, agreement_id: str) -> LandlordAgreement | None:
        found: LandlordAgreement | None = self._one(schema.LANDLORD_AGREEMENTS, agreement_id)
        return found

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        found: ServiceAgreement | None = self._one(schema.SAS, sa_id)
        return found

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        return self._many(schema.SAS, schema.service_agreements.c.account_id == account_id)

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]:
        return self._many(schema.SAS, schema.service_agreements.c.premise_id == premise_id)

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]:
        return self._many(schema.SAS, schema.service_agreements.c.master_sa_id == master_sa_id)

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        return self._many(schema.LINKS, schema.sa_sp_links.c.sa_id == sa_id)

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]:
        return self._many(schema.LINKS, schema.sa_sp_links.c.sp_id == sp_id)

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]:
        return self._many(schema.FIELD_ACTIVITIES, schema.field_activities.c.sa_id == sa_id)

    def field_activity(self, fa_id: str) -> FieldActivity | None:
        found: FieldActivity | None = self._one(schema.FIELD_ACTIVITIES, fa_id)
        return found

    def reads_of_sp(self, sp_id: str) -> list[MeterRead]:
        """Oldest first."""
        return self._many(schema.READS, schema.meter_reads.c.sp_id == sp_id,
                          order=[schema.meter_reads.c.read_at])

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None:
        found = self._many(schema.TODOS, schema.todos.c.todo_type == todo_type,
                           schema.todos.c.drill_kind == drill_key.kind,
                           schema.todos.c.drill_id == drill_key.id,
                           schema.todos.c.status != ToDoStatus.COMPLETE.value)
        return found[0] if found else None

    def todo(self, todo_id: str) -> ToDoEntry | None:
        found: ToDoEntry | None = self._one(schema.TODOS, todo_id)
        return found

    def contact(self, contact_id: str) -> CustomerContact | None:
        found: CustomerContact | None = self._one(schema.CONTACTS, contact_id)
        return found

    def financial_transaction(self, ft_id: str) -> FinancialTransaction | None:
        found: FinancialTransaction | None = self._one(schema.FINANCIAL_TRANSACTIONS, ft_id)
        return found

    def financial_transactions_of_sa(self, sa_id: str) -> list[FinancialTransaction]:
        return self._many(schema.FINANCIAL_TRANSACTIONS,
                          schema.financial_transactions.c.sa_id == sa_id)

    def budget(self, budget_id: str) -> Budget | None:
        found: Budget | None = self._one(schema.BUDGETS, budget_id)
        return found

    def collection_process(self, process_id: str) -> CollectionProcess | None:
        found: CollectionProcess | None = self._one(schema.COLLECTION_PROCESSES, process_id)
        return found

    def severance_process(self, process_id: str) -> SeveranceProcess | None:
        found: SeveranceProcess | None = self._one(schema.SEVERANCE_PROCESSES, process_id)
        return found

    def budgets_of_account(self, account_id: str) -> list[Budget]:
        return self._many(schema.BUDGETS, schema.budgets.c.account_id == account_id)

    def collection_processes_of_account(self, account_id: str) -> list[CollectionProcess]:
        return self._many(schema.COLLECTION_PROCESSES,
                          schema.collection_processes.c.account_id == account_id)

    def severance_processes_of_sa(self, sa_id: str) -> list[SeveranceProcess]:
        return self._many(schema.SEVERANCE_PROCESSES,
                          schema.severance_processes.c.sa_id == sa_id)

    # --- queries beyond the port: searches, listings, batch scans ----------------------------

    def persons_by_name_prefix(self, prefix: str, limit: int = 50) -> list[Person]:
        """Case-insensitive prefix search on the name (``smith`` finds ``Smith,Ann``)."""
        key = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (select(schema.persons).where(schema.persons.c.name_key.like(key + "%",
                                                                            escape="\\"))
                 .order_by(schema.persons.c.name_key, schema.persons.c.id).limit(limit))
        return [schema.PERSONS.from_row(row) for row in self.connection.execute(query).mappings()]

    def persons_by_phone(self, number: str, limit: int = 50) -> list[Person]:
        """Persons with a phone whose digits equal those of ``number`` (formatting ignored)."""
        digits = schema.phone_digits(number)
        if not digits:
            return []
        ids = select(schema.person_phones.c.person_id).where(
            schema.person_phones.c.digits == digits)
        return self._many(schema.PERSONS, schema.persons.c.id.in_(ids))[:limit]

    def accounts_of_person(self, person_id: str) -> list[Account]:
        """Accounts where the person is the main person or one of the others."""
        ids = select(schema.account_persons.c.account_id).where(
            schema.account_persons.c.person_id == person_id)
        return self._many(schema.ACCOUNTS, schema.accounts.c.id.in_(ids))

    def premises_by_address(self, text: str, limit: int = 50) -> list[Premise]:
        """Premises whose one-line address contains ``text`` (case-insensitive)."""
        key = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (select(schema.premises)
                 .where(schema.premises.c.address_key.like(f"%{key}%", escape="\\"))
                 .order_by(schema.premises.c.id).limit(limit))
        return [schema.PREMISES.from_row(row)
                for row in self.connection.execute(query).mappings()]

    def landlord_agreements_of_account(self, account_id: str) -> list[LandlordAgreement]:
        return self._many(schema.LANDLORD_AGREEMENTS,
                          schema.landlord_agreements.c.landlord_account_id == account_id)

    def sas_with_status(self, *statuses: SaStatus) -> list[ServiceAgreement]:
        return self._many(schema.SAS, schema.service_agreements.c.status.in_(
            [status.value for status in statuses]))

    def pending_sas_due(self, business_date: dt.date) -> list[ServiceAgreement]:
        """Pending starts whose start date and pending stops whose end date is on or before
        ``business_date`` (the activation batch's work list), by date then id."""
        sa = schema.service_agreements.c
        due_date = func.coalesce(sa.end_date, sa.start_date)
        return self._many(schema.SAS, or_(
            and_(sa.status == SaStatus.PENDING_START.value, sa.start_date <= business_date),
            and_(sa.status == SaStatus.PENDING_STOP.value, sa.end_date <= business_date),
        ), order=[due_date])

    def pending_field_activities(self, scheduled_on_or_before: dt.date | None = None
                                 ) -> list[FieldActivity]:
        fa = schema.field_activities.c
        where = [fa.status == FaStatus.PENDING.value]
        if scheduled_on_or_before is not None:
            where.append(fa.scheduled_date <= scheduled_on_or_before)
        return self._many(schema.FIELD_ACTIVITIES, *where, order=[fa.scheduled_date])

    def todos(self, role: str | None = None, todo_type: str | None = None,
              status: ToDoStatus | None = None, drill_key: DrillKey | None = None,
              unfinished: bool = False) -> list[ToDoEntry]:
        column = schema.todos.c
        where: list[ColumnElement[bool]] = []
        if unfinished:
            where.append(column.status != ToDoStatus.COMPLETE.value)
        if role is not None:
            where.append(column.role == role)
        if todo_type is not None:
            where.append(column.todo_type == todo_type)
        if status is not None:
            where.append(column.status == status.value)
        if drill_key is not None:
            where += [column.drill_kind == drill_key.kind, column.drill_id == drill_key.id]
        return self._many(schema.TODOS, *where, order=[column.created_at])

    def contacts_of_person(self, person_id: str) -> list[CustomerContact]:
        """Newest first."""
        return self._many(schema.CONTACTS, schema.contacts.c.person_id == person_id,
                          order=[schema.contacts.c.contacted_at.desc()])

    def contacts_with_reminders_due(self, business_date: dt.date) -> list[CustomerContact]:
        column = schema.contacts.c
        return self._many(schema.CONTACTS, column.next_reminder_date <= business_date,
                          order=[column.next_reminder_date])


def _implements_the_ports(view: SqlCcbView) -> tuple[CcbView, SearchView, ToDoListView,
                                                     ReminderView]:
    """Never called: mypy checks here that the SQL view offers every query port."""
    return view, view, view, view
