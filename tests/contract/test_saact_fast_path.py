"""SAACT's set-based path (steps 5.9, 6.0) on SQLite and PostgreSQL: over the same mixed data,
a run with it and a run forced through the general rules leave the same database, row for row:
every CCB table (SAs with their audit logs, links, accounts and their persons, To Dos, FAs,
budgets, processes ...), the change log's entities in order and by unit, and the sync requests
(ids, queue order, versions, fingerprints, payloads, notes) and sync entities."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from sync.batches import BatchReport, JobContext, load_jobs
from sync.ccb.model import (
    Account,
    Address,
    Budget,
    CollectionProcess,
    DrillKey,
    Entity,
    FaPurpose,
    FaStatus,
    FieldActivity,
    MeasuringComponent,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
    ToDoEntry,
)
from sync.ccb.ports import CcbView
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.storage import ccb_schema
from sync.storage.ccb import SqlCcbStore
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.outbox import SqlOutbox
from sync.storage.outbox_schema import sync_entities, sync_requests
from sync.storage.saact_fast import SqlSaactFastPath
from tests.contract.test_batch_runner import _sql_store

ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
SINCE = dt.date(2024, 6, 1)
TOMORROW = TODAY + dt.timedelta(days=1)
ADDRESS = Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701")


class _Customer:
    """Entities of one customer: person, account, premise, service point."""

    def __init__(self, key: str, found: list[Entity], *, time_zone: str | None = None,
                 sp_type: str = "W-RES", final_bill_pending: bool = False) -> None:
        self.key = key
        self.account = f"A-{key}"
        self.premise = f"PR-{key}"
        self.sp = f"SP-{key}"
        self.found = found
        found += [Person(id=f"P-{key}", name=f"CUSTOMER,{key}"),
                  Account(id=self.account, main_person_id=f"P-{key}",
                          final_bill_pending=final_bill_pending),
                  Premise(id=self.premise, address=ADDRESS, time_zone=time_zone),
                  ServicePoint(id=self.sp, premise_id=self.premise, sp_type=sp_type,
                               time_zone="America/Denver" if time_zone is None else None,
                               meter_id=f"M-{key}", measuring_components=(
                                   MeasuringComponent(id=f"MC-{key}", mc_class="gallon"),))]

    def sa(self, sa_id: str, status: SaStatus, *, start: dt.date = TODAY,
           end: dt.date | None = None, sa_type: str = "W-RES", master: str | None = None,
           read: float | None = None) -> ServiceAgreement:
        sa = ServiceAgreement(id=sa_id, account_id=self.account, sa_type=sa_type, status=status,
                              start_date=start, end_date=end, premise_id=self.premise,
                              master_sa_id=master)
        self.found += [sa, SaSpLink(id=f"L-{sa_id}", sa_id=sa_id, sp_id=self.sp,
                                    start_date=start, stop_date=end, start_read=read)]
        return sa


def _mixed() -> list[Entity]:
    """Due SAs the set-based path takes, and due SAs that must go the general way."""
    found: list[Entity] = []
    # Set-based: ready pending starts, and pending stops that are their account's only SA.
    for n in range(6):
        customer = _Customer(f"F{n}", found, time_zone="America/Chicago" if n % 2 else None,
                             final_bill_pending=n == 5)
        if n < 3:
            customer.sa(f"SA-F{n}", SaStatus.PENDING_START, read=12.5 if n == 1 else None)
        else:
            customer.sa(f"SA-F{n}", SaStatus.PENDING_STOP, start=SINCE, end=TODAY)
    # General: a master and its sub SA (on another account), both due pending starts.
    _Customer("M", found).sa("SA-M", SaStatus.PENDING_START)
    _Customer("S", found).sa("SA-S", SaStatus.PENDING_START, master="SA-M")
    # General: a pending start with a pending field activity.
    _Customer("FA", found).sa("SA-FA", SaStatus.PENDING_START)
    found.append(FieldActivity(id="FA-1", fa_type="W-ON", sp_id="SP-FA", sa_id="SA-FA",
                               sa_sp_link_id="L-SA-FA", purpose=FaPurpose.START,
                               scheduled_date=TODAY, status=FaStatus.PENDING))
    # General: a pending start with an open To Do (resolved when it moves on).
    _Customer("TD", found).sa("SA-TD", SaStatus.PENDING_START)
    found.append(ToDoEntry(id="TODO-1", todo_type="TD-SAACT", role="CSR", message="stuck",
                           drill_key=DrillKey(kind="sa", id="SA-TD"),
                           created_at=dt.datetime(2025, 3, 1, tzinfo=dt.UTC)))
    # General: a stop that is not the account's last SA in service.
    not_last = _Customer("NL", found)
    not_last.sa("SA-NL1", SaStatus.PENDING_STOP, start=SINCE, end=TODAY)
    not_last.sa("SA-NL2", SaStatus.ACTIVE, start=SINCE)
    # General: stops with budget, collection and deposit consequences.
    _Customer("BU", found).sa("SA-BU", SaStatus.PENDING_STOP, start=SINCE, end=TODAY)
    found.append(Budget(id="BUD-1", account_id="A-BU"))
    _Customer("CO", found).sa("SA-CO", SaStatus.PENDING_STOP, start=SINCE, end=TODAY)
    found.append(CollectionProcess(id="COL-1", account_id="A-CO", sa_ids=("SA-CO",)))
    deposit = _Customer("DE", found)
    deposit.sa("SA-DE", SaStatus.PENDING_STOP, start=SINCE, end=TODAY)
    deposit.sa("SA-DEP", SaStatus.ACTIVE, start=SINCE, sa_type="DEP-RES")
    # General: two due SAs of one account; a start that carries its stop date.
    shared = _Customer("SH", found)
    shared.sa("SA-SH1", SaStatus.PENDING_START)
    shared.sa("SA-SH2", SaStatus.PENDING_START)
    _Customer("SD", found).sa("SA-SD", SaStatus.PENDING_START, end=TOMORROW)
    # General: fieldwork required and not done (a To Do), and done (activated with its read).
    _Customer("E1", found, sp_type="E-RES").sa("SA-E1", SaStatus.PENDING_START, sa_type="E-RES")
    # Not due: left alone.
    _Customer("ND", found).sa("SA-ND", SaStatus.PENDING_START, start=TOMORROW)
    return found


class _GeneralOnly(SqlBatchQueries):
    saact_fast_path = None  # type: ignore[assignment]


class _Counting(SqlBatchQueries):
    """Counts the items the set-based path takes."""

    taken: list[str]

    def saact_fast_path(self, admin: Any, today: dt.date) -> SqlSaactFastPath:
        path = super().saact_fast_path(admin, today)
        taken = self.taken
        shortcuts = path.shortcuts

        def counted(view: CcbView, item_ids: Sequence[str]) -> Any:
            found = shortcuts(view, item_ids)
            taken.extend(found)
            return found

        path.shortcuts = counted  # type: ignore[method-assign]
        return path


def _run(store: SqlCcbStore, queries: SqlBatchQueries, chunk_size: int) -> BatchReport:
    return load_jobs().run("SAACT", JobContext(admin=ADMIN, clock=FixedClock(TODAY),
                                               store=store, queries=queries,
                                               chunk_size=chunk_size))


def _database(store: SqlCcbStore) -> dict[str, Any]:
    """Everything the run wrote, comparable across two databases."""
    tables = [kind.table for kind in ccb_schema.ENTITY_TABLES.values()]
    tables += [ccb_schema.account_persons, ccb_schema.person_phones]
    changes = ccb_schema.entity_changes
    with store.engine.connect() as connection:
        rows = {table.name: sorted(map(repr, connection.execute(select(table))))
                for table in tables}
        log = [dict(row) for row in connection.execute(
            select(changes).order_by(changes.c.seq)).mappings()]
        requests = [dict(row) for row in connection.execute(
            select(sync_requests).order_by(sync_requests.c.seq)).mappings()]
        entities = [dict(row) for row in connection.execute(
            select(sync_entities).order_by(sync_entities.c.entity_type,
                                           sync_entities.c.entity_id)).mappings()]
    units: dict[str, int] = {}
    rows["entity_changes"] = [
        repr((row["seq"], units.setdefault(row["unit_id"], len(units)), row["entity_type"],
              row["entity_id"], row["changed_at"])) for row in log]
    return {"tables": rows, "requests": requests, "entities": entities}


def _differences(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[str]:
    return [name for name in left if left[name] != right[name]]


@pytest.mark.parametrize("chunk_size", [500, 4])
def test_step_5_9_set_based_path_leaves_the_database_the_general_rules_leave(
        database_url: str, postgres_or_sqlite_second_url: str, chunk_size: int) -> None:
    results = []
    taken: list[str] = []
    for url, fast in ((database_url, True), (postgres_or_sqlite_second_url, False)):
        store = _sql_store(url, _mixed())
        SqlOutbox(store, ADMIN)
        queries = _Counting(store.engine) if fast else _GeneralOnly(store.engine)
        if isinstance(queries, _Counting):
            queries.taken = taken
        report = _run(store, queries, chunk_size)
        again = _run(store, queries, chunk_size)
        results.append((None, report.changed, [e.entity_id for e in report.errors],
                        _database(store), again.changed))
        store.dispose()
    (_, changed, errors, fast_db, changed_again), (_, general_changed, general_errors,
                                                   general_db, general_again) = results
    assert sorted(taken) == ["SA-F0", "SA-F1", "SA-F2", "SA-F3", "SA-F4", "SA-F5"]
    assert (changed, errors) == (general_changed, general_errors)
    assert changed_again == general_again
    assert not _differences(fast_db["tables"], general_db["tables"])
    assert fast_db["requests"] == general_db["requests"]
    assert fast_db["entities"] == general_db["entities"]
    statuses = {row.split("'")[1]: row for row in fast_db["tables"]["ccb_service_agreements"]}
    assert "'40'" in statuses["SA-F3"]
    assert "'20'" in statuses["SA-F0"]
    assert "'30'" in statuses["SA-DEP"]  # the deposit's refund: the general rules ran
