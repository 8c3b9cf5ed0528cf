"""The CCB batches' selections over SQL, and a view that prefetches a chunk's SAs.

Selections cost in proportion to the *due* rows, not the table: each is a range scan of an
index on ``(status, date, id)`` (``ccb_schema``), read a page at a time with keyset pagination
(``(date, id) > (last date, last id)``), each page in a short read transaction of its own. So a
run never holds a read snapshot open while it writes (SQLite's write-ahead log can checkpoint,
PostgreSQL's vacuum is not held back), and rows that the run has already moved on (a different
status) simply drop out of the next page.

:class:`PrefetchedSaView` answers the per-SA reads of the lifecycle (the SA, its links, FAs, sub
SAs, account, the account's SAs and main person, the SA's open To Dos) and of the stop
consequences (the accounts' budgets and collection processes, the SAs' severance processes and
financial transactions) for a whole chunk with one query per collection, made the first time
the rules read it, instead of several per SA; any other read goes to the database as usual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, false, func, select, tuple_

from sync.ccb.batches.stop_upload import StopRequestRow
from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    DrillKey,
    FaStatus,
    FieldActivity,
    FinancialTransaction,
    Person,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    SeveranceProcess,
    ToDoEntry,
    ToDoStatus,
)
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import in_index_order
from sync.storage.ccb_view import SqlCcbView
from sync.storage.saact_fast import SqlSaactFastPath
from sync.storage.stop_prefetch import PrefetchedAccountsView, grouped
from sync.storage.stop_upload_fast import SqlStopUploadFastPath

_SA = schema.service_agreements.c
_FA = schema.field_activities.c
_CONTACT = schema.contacts.c


@dataclass(frozen=True)
class _Part:
    """One index range: rows of ``table`` matching ``where``, in (``key``, id) order."""

    where: tuple[ColumnElement[bool], ...]
    key: Any
    id: Any


def page_query(part: _Part, last: tuple[Any, str] | None, size: int) -> Any:
    """The page of ``part`` after the (key, id) ``last`` (from the start without)."""
    query = select(part.key, part.id).where(*part.where)
    if last is not None:
        query = query.where(tuple_(part.key, part.id) > tuple_(*last))
    return query.order_by(part.key, part.id).limit(size)


def read_page(connection: Connection, query: Any) -> list[Any]:
    """A page's rows, read in order from the range's index up to the page size (else a run
    whose statistics said few rows were due read and sorted every due row for each page, and
    cost the square of its rows)."""
    in_index_order(connection)
    return list(connection.execute(query).all())


class KeysetSelection:
    """Ids from one or more index ranges, a page at a time, in a short transaction each."""

    def __init__(self, engine: Engine, *parts: _Part) -> None:
        self._engine = engine
        self._parts = parts

    def count(self) -> int:
        with self._engine.connect() as connection:
            return sum(int(connection.execute(
                select(func.count()).select_from(part.id.table).where(*part.where)
            ).scalar_one()) for part in self._parts)

    def chunks(self, size: int) -> Iterator[list[str]]:
        if size < 1:
            raise ValueError(f"chunk size must be at least 1 (got {size})")
        for part in self._parts:
            last: tuple[Any, str] | None = None
            while True:
                with self._engine.connect() as connection:
                    rows = read_page(connection, page_query(part, last, size))
                if not rows:
                    break
                yield [str(row[1]) for row in rows]
                if len(rows) < size:
                    break
                last = (rows[-1][0], str(rows[-1][1]))


class SqlBatchQueries:
    """:class:`~sync.batches.ports.BatchQueries` over the CCB store's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _sas(self, *parts: tuple[tuple[ColumnElement[bool], ...], Any]) -> KeysetSelection:
        return KeysetSelection(self._engine, *(_Part(where, key, _SA.id)
                                               for where, key in parts))

    def due_pending_sas(self, business_date: dt.date) -> KeysetSelection:
        return self._sas(
            ((_SA.status == SaStatus.PENDING_START.value, _SA.start_date <= business_date),
             _SA.start_date),
            ((_SA.status == SaStatus.PENDING_STOP.value, _SA.end_date <= business_date),
             _SA.end_date))

    def pending_sas_up_to(self, last_date: dt.date, sa_types: Sequence[str]) -> KeysetSelection:
        of_type = _SA.sa_type.in_(list(sa_types)) if sa_types else false()
        # A pending start's stop date is never before its start date, so the first range
        # already holds every pending start whose stop date is due too.
        return self._sas(
            ((_SA.status == SaStatus.PENDING_START.value, _SA.start_date <= last_date, of_type),
             _SA.start_date),
            ((_SA.status == SaStatus.PENDING_STOP.value, _SA.end_date <= last_date, of_type),
             _SA.end_date))

    def pending_sas_before(self, cutoff: dt.date) -> KeysetSelection:
        return self._sas(
            ((_SA.status == SaStatus.PENDING_START.value, _SA.start_date < cutoff),
             _SA.start_date),
            ((_SA.status == SaStatus.PENDING_STOP.value, _SA.end_date < cutoff), _SA.end_date))

    def pending_fas_up_to(self, last_date: dt.date) -> KeysetSelection:
        return KeysetSelection(self._engine, _Part(
            (_FA.status == FaStatus.PENDING.value, _FA.scheduled_date <= last_date),
            _FA.scheduled_date, _FA.id))

    def contacts_with_reminders_due(self, business_date: dt.date) -> KeysetSelection:
        return KeysetSelection(self._engine, _Part(
            (_CONTACT.next_reminder_date <= business_date,), _CONTACT.next_reminder_date,
            _CONTACT.id))

    def prefetch_sas(self, view: CcbView, sa_ids: Sequence[str]) -> CcbView:
        if not isinstance(view, SqlCcbView):
            return view
        return PrefetchedSaView(view, sa_ids)

    def saact_fast_path(self, admin: AdminConfig, today: dt.date) -> SqlSaactFastPath:
        """SAACT's set-based path for its common case (:mod:`sync.storage.saact_fast`)."""
        return SqlSaactFastPath(admin, today)

    def stop_upload_fast_path(self, admin: AdminConfig, today: dt.date, user: str,
                              rows: Mapping[str, StopRequestRow]) -> SqlStopUploadFastPath:
        """STOPUPL's set-based path for the common stop request
        (:mod:`sync.storage.stop_upload_fast`)."""
        return SqlStopUploadFastPath(admin, today, user, rows)

    def prefetch_accounts(self, view: CcbView, account_ids: Sequence[str]) -> CcbView:
        if not isinstance(view, SqlCcbView):
            return view
        return PrefetchedAccountsView(view, account_ids)


class PrefetchedSaView(SqlCcbView):
    """A :class:`SqlCcbView` that reads what the lifecycle reads about ``sa_ids`` for all of
    them at once: the SAs of their accounts up front, each other collection with one query the
    first time the rules ask for any of it (a chunk of activations never reads budgets)."""

    def __init__(self, view: SqlCcbView, sa_ids: Sequence[str]) -> None:
        super().__init__(view.connection)
        ids = list(dict.fromkeys(sa_ids))
        self._id_list = ids
        self._ids = frozenset(ids)
        self._account_ids = frozenset(str(row[0]) for row in self.connection.execute(
            select(_SA.account_id).where(_SA.id.in_(ids)).distinct()))
        # The chosen SAs are among their accounts' SAs.
        of_accounts: list[ServiceAgreement] = self._many_in(
            schema.SAS, "account_id", sorted(self._account_ids))
        self._sas: dict[str, ServiceAgreement] = {sa.id: sa for sa in of_accounts}
        self._of_account = grouped(of_accounts, "account_id")
        self._loaded: dict[str, Any] = {}

    def _load(self, name: str) -> Any:
        """The collection ``name`` for the whole chunk, read on first use."""
        if name not in self._loaded:
            self._loaded[name] = self._read(name)
        return self._loaded[name]

    def _read(self, name: str) -> Any:
        ids, accounts = self._id_list, self._account_ids
        if name == "subs":
            subs: list[ServiceAgreement] = self._many_in(schema.SAS, "master_sa_id", ids)
            for sa in subs:
                self._sas.setdefault(sa.id, sa)
            return grouped(subs, "master_sa_id")
        if name == "links":
            return grouped(self._many_in(schema.LINKS, "sa_id", ids), "sa_id")
        if name == "fas":
            return grouped(self._many_in(schema.FIELD_ACTIVITIES, "sa_id", ids), "sa_id")
        if name == "accounts":
            return {account.id: account for account in self._many_in(
                schema.ACCOUNTS, "id", sorted(accounts))}
        if name == "persons":
            main = {account.main_person_id for account in self._load("accounts").values()}
            return {person.id: person for person in self._many_in(
                schema.PERSONS, "id", sorted(main))}
        if name == "todos":
            todo = schema.todos.c
            return {entry.id: entry for entry in self._many(
                schema.TODOS, todo.drill_kind == "sa", todo.drill_id.in_(ids),
                todo.status != ToDoStatus.COMPLETE.value)}
        if name == "open_todos":
            return {(entry.todo_type, entry.drill_key.id): entry
                    for entry in self._load("todos").values()}
        # What the stop consequences read about the SA and its account.
        if name == "budgets":
            return grouped(self._many_in(schema.BUDGETS, "account_id", sorted(accounts)),
                           "account_id")
        if name == "collections":
            return grouped(self._many_in(schema.COLLECTION_PROCESSES, "account_id",
                                         sorted(accounts)), "account_id")
        if name == "severances":
            return grouped(self._many_in(schema.SEVERANCE_PROCESSES, "sa_id", ids), "sa_id")
        if name == "fts":
            return grouped(self._many_in(schema.FINANCIAL_TRANSACTIONS, "sa_id", ids), "sa_id")
        raise KeyError(name)

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        found = self._sas.get(sa_id)
        return found if found is not None else super().sa(sa_id)

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]:
        if master_sa_id in self._ids:
            return list(self._load("subs").get(master_sa_id, []))
        return super().sub_sas(master_sa_id)

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        if account_id in self._account_ids:
            return list(self._of_account.get(account_id, []))
        return super().sas_of_account(account_id)

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        if sa_id in self._ids:
            return list(self._load("links").get(sa_id, []))
        return super().links_of_sa(sa_id)

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]:
        if sa_id in self._ids:
            return list(self._load("fas").get(sa_id, []))
        return super().field_activities_of_sa(sa_id)

    def account(self, account_id: str) -> Account | None:
        if account_id in self._account_ids:
            found: Account | None = self._load("accounts").get(account_id)
            return found
        return super().account(account_id)

    def person(self, person_id: str) -> Person | None:
        found: Person | None = self._load("persons").get(person_id)
        return found if found is not None else super().person(person_id)

    def open_todo(self, todo_type: str, drill_key: DrillKey) -> ToDoEntry | None:
        if drill_key.kind == "sa" and drill_key.id in self._ids:
            found: ToDoEntry | None = self._load("open_todos").get((todo_type, drill_key.id))
            return found
        return super().open_todo(todo_type, drill_key)

    def todo(self, todo_id: str) -> ToDoEntry | None:
        found: ToDoEntry | None = self._load("todos").get(todo_id)
        return found if found is not None else super().todo(todo_id)

    def budgets_of_account(self, account_id: str) -> list[Budget]:
        if account_id in self._account_ids:
            return list(self._load("budgets").get(account_id, []))
        return super().budgets_of_account(account_id)

    def collection_processes_of_account(self, account_id: str) -> list[CollectionProcess]:
        if account_id in self._account_ids:
            return list(self._load("collections").get(account_id, []))
        return super().collection_processes_of_account(account_id)

    def severance_processes_of_sa(self, sa_id: str) -> list[SeveranceProcess]:
        if sa_id in self._ids:
            return list(self._load("severances").get(sa_id, []))
        return super().severance_processes_of_sa(sa_id)

    def financial_transactions_of_sa(self, sa_id: str) -> list[FinancialTransaction]:
        if sa_id in self._ids:
            return list(self._load("fts").get(sa_id, []))
        return super().financial_transactions_of_sa(sa_id)
