"""What the CCB store contract tests share: one face over the in-memory and the SQL stores, and
a fully populated example of every entity."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sync.ccb.changes import Changes
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import (
    Account,
    Address,
    AuditEntry,
    Budget,
    CollectionProcess,
    ContactCharacteristic,
    ContactLogEntry,
    ContactReminder,
    CreatedBy,
    CustomerContact,
    DrillKey,
    FaPurpose,
    FaStatus,
    FieldActivity,
    FinancialTransaction,
    FtKind,
    FtStatus,
    LandlordAgreement,
    MeasuringComponent,
    MeterRead,
    Person,
    Phone,
    Premise,
    ProcessStatus,
    ReadType,
    SaSpLink,
    SaStatus,
    SeasonalPreference,
    ServiceAgreement,
    ServicePoint,
    SeveranceEvent,
    SeveranceProcess,
    ToDoEntry,
    ToDoLogEntry,
    ToDoStatus,
    UsageFlag,
)
from sync.ccb.ports import CcbUnitOfWork, CcbView
from sync.clock import FixedClock
from sync.storage import ccb_schema
from sync.storage.ccb import SqlCcbStore

T = TypeVar("T")
CHICAGO = ZoneInfo("America/Chicago")
NOW = dt.datetime(2025, 3, 3, 9, 30, tzinfo=CHICAGO)


class StoreUnderTest:
    """The in-memory store or the SQL store, seen through the same few operations."""

    def __init__(self, name: str, memory: InMemoryCcb | None = None,
                 sql: SqlCcbStore | None = None) -> None:
        self.name = name
        self.memory = memory
        self.sql = sql

    def execute(self, fn: CcbUnitOfWork) -> Changes:
        if self.memory is not None:
            return self.memory.execute(fn)
        assert self.sql is not None
        return self.sql.execute(fn)

    def read(self, fn: Callable[[CcbView], T]) -> T:
        if self.memory is not None:
            return fn(self.memory)
        assert self.sql is not None
        return self.sql.read(fn)

    def entity_changes(self) -> list[tuple[str, str]]:
        if self.memory is not None:
            return list(self.memory.entity_changes)
        assert self.sql is not None
        return [(c.entity_type, c.entity_id) for c in self.sql.entity_changes()]

    def dump(self) -> Any:
        """Everything stored, comparable with ``==`` (for "nothing changed" assertions)."""
        if self.memory is not None:
            return (self.memory.state(), list(self.memory.entity_changes))
        assert self.sql is not None
        with self.sql.engine.connect() as connection:
            return {table.name: sorted(map(repr, connection.execute(select(table)).all()))
                    for table in ccb_schema.metadata.tables.values()}

    def seed(self, changes: Changes) -> None:
        self.execute(lambda view, ids: changes)


def store_of_kind(request: pytest.FixtureRequest, kind: str) -> Iterator[StoreUnderTest]:
    """A fresh, empty store: ``memory``, ``sqlite`` or ``postgresql``."""
    if kind == "memory":
        yield StoreUnderTest("memory", memory=InMemoryCcb())
        return
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "postgres_url")
    sql = SqlCcbStore(url, clock=FixedClock(dt.date(2025, 3, 3)))
    sql.create_schema()
    try:
        yield StoreUnderTest(kind, sql=sql)
    finally:
        sql.dispose()


STORE_KINDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def address(line1: str = "4410 N Clarendon Ave", line2: str | None = None) -> Address:
    return Address(line1=line1, line2=line2, city="Chicago", state="IL", postal_code="60640")


def every_entity() -> Changes:
    """One of each entity with every optional field filled, all consistent with each other."""
    changes = Changes()
    changes.put_person(Person(
        id="P-1", name="BRENNAN,MARGARET", email="mb@example.com",
        phones=(Phone(type="mobile", number="(773) 555-0148", primary=True),
                Phone(number="312-555-0190")),
        mailing_address=address("2250 W Roscoe St")))
    changes.put_person(Person(id="P-2", name="OKAFOR,CHIDI"))
    changes.put_person(Person(id="P-3", name="Clarendon Holdings LLC", is_business=True))
    changes.put_account(Account(
        id="A-1", main_person_id="P-1", other_person_ids=("P-3",), customer_class="LANDLORD",
        bill_cycle="BC05", mailing_premise_id="PR-1", mailing_address=address("PO Box 77"),
        division="NORTH", final_bill_pending=True))
    changes.put_account(Account(id="A-2", main_person_id="P-2"))
    changes.put_landlord_agreement(LandlordAgreement(
        id="LA-1", landlord_person_id="P-1", landlord_account_id="A-1",
        preferences=(SeasonalPreference(service_type="E"),
                     SeasonalPreference(service_type="G", seasonal=True, season_start="1015",
                                        season_end="0415"))))
    changes.put_premise(Premise(id="PR-1", address=address(), landlord_agreement_id="LA-1",
                                time_zone="America/Chicago"))
    changes.put_premise(Premise(id="PR-1-1", address=address(line2="Unit 1"),
                                parent_premise_id="PR-1"))
    changes.put_premise(Premise(id="PR-1-2", address=address(line2="Unit 2"),
                                parent_premise_id="PR-1"))
    changes.put_service_point(ServicePoint(
        id="SP-1E", premise_id="PR-1-1", sp_type="E-RES", time_zone="America/Chicago",
        meter_id="M-1", measuring_components=(MeasuringComponent(id="MC-1", mc_class="kWh"),
                                              MeasuringComponent(id="MC-2", mc_class="kW",
                                                                 channel="demand"))))
    changes.put_service_point(ServicePoint(id="SP-1G", premise_id="PR-1-1", sp_type="G-RES"))
    changes.put_sa(ServiceAgreement(
        id="SA-1", account_id="A-2", sa_type="E-RES", status=SaStatus.PENDING_STOP,
        start_date=dt.date(2024, 6, 1), end_date=dt.date(2025, 3, 31), premise_id="PR-1-1",
        created_by=CreatedBy(kind="customer", reason="move in"),
        stopped_by=CreatedBy(kind="customer", reason="moving out"),
        forwarding_address=address("918 S Wabash Ave", "Apt 1204"),
        audit=(AuditEntry(at=NOW, user="csr1", action="request stop",
                          from_status=SaStatus.ACTIVE, to_status=SaStatus.PENDING_STOP,
                          details="by phone"),)))
    changes.put_sa(ServiceAgreement(
        id="SA-2", account_id="A-1", sa_type="E-RES", status=SaStatus.PENDING_START,
        start_date=dt.date(2025, 3, 31), premise_id="PR-1-1", master_sa_id="SA-1",
        created_by=CreatedBy(kind="system", reason="landlord reversion",
                             reciprocal_sa_id="SA-1")))
    changes.put_link(SaSpLink(id="L-1", sa_id="SA-1", sp_id="SP-1E",
                              start_date=dt.date(2024, 6, 1), stop_date=dt.date(2025, 3, 31),
                              start_read=18234.5, stop_read=22391.25,
                              usage_flag=UsageFlag.MINUS, use_percent=50.0))
    changes.put_link(SaSpLink(id="L-2", sa_id="SA-2", sp_id="SP-1E",
                              start_date=dt.date(2025, 3, 31)))
    changes.put_field_activity(FieldActivity(
        id="FA-1", fa_type="E-OFF", sp_id="SP-1E", sa_id="SA-1", sa_sp_link_id="L-1",
        purpose=FaPurpose.STOP, scheduled_date=dt.date(2025, 3, 31), status=FaStatus.COMPLETE,
        completed_at=NOW, completion_read=22391.25))
    changes.put_field_activity(FieldActivity(
        id="FA-2", fa_type="E-ON", sp_id="SP-1E", sa_id="SA-2", sa_sp_link_id="L-2",
        purpose=FaPurpose.START, scheduled_date=dt.date(2025, 3, 31)))
    changes.put_read(MeterRead(id="R-2", sp_id="SP-1E", read_at=NOW, value=22391.25,
                               read_type=ReadType.SYSTEM_PRORATED, use_on_bill=False))
    changes.put_read(MeterRead(id="R-1", sp_id="SP-1E", read_at=NOW - dt.timedelta(days=30),
                               value=21877.0))
    changes.put_todo(ToDoEntry(
        id="TD-1", todo_type="TD-SAACT", role="CSR", status=ToDoStatus.BEING_WORKED,
        message="SA 'SA-1' cannot stop: stop FA 'FA-2' is not complete",
        drill_key=DrillKey(kind="sa", id="SA-1"), created_at=NOW, assigned_user="csr1",
        log=(ToDoLogEntry(at=NOW, user="csr1", comment="called the customer"),)))
    changes.put_todo(ToDoEntry(
        id="TD-2", todo_type="TD-SAACT", role="CSR", status=ToDoStatus.COMPLETE,
        message="done", drill_key=DrillKey(kind="sa", id="SA-1"), created_at=NOW))
    changes.put_contact(CustomerContact(
        id="CC-1", person_id="P-2", account_id="A-2", premise_id="PR-1-1",
        contact_class="RES", contact_type="STOPSVC", contacted_at=NOW, method="phone",
        user="csr1", comments="moving to Wabash Ave", open=True,
        log=(ContactLogEntry(at=NOW, user="csr1", comment="letter sent"),),
        characteristics=(ContactCharacteristic(type="REASON", value="MOVE"),),
        reminders=(ContactReminder(trigger_date=dt.date(2025, 3, 20), role="CSR"),
                   ContactReminder(trigger_date=dt.date(2025, 3, 10), user="csr1",
                                   sent=True)),
        letter_template="STOP-CONFIRM", letter_queued=True))
    changes.put_financial_transaction(FinancialTransaction(
        id="FT-1", sa_id="SA-1", kind=FtKind.BILL_SEGMENT, amount=Decimal("84.17"),
        accounting_date=dt.date(2025, 3, 31), closing_bill_segment=True))
    changes.put_financial_transaction(FinancialTransaction(
        id="FT-2", sa_id="SA-1", kind=FtKind.ADJUSTMENT, amount=Decimal("-12345678.90"),
        accounting_date=dt.date(2025, 2, 1), adjustment_type="CREDIT",
        status=FtStatus.CANCELED, cancel_reason="ENTRY-ERROR",
        canceled_on=dt.date(2025, 2, 2)))
    changes.put_budget(Budget(id="BU-1", account_id="A-2", non_billed=True,
                              sa_ids=("SA-1", "SA-2")))
    changes.put_budget(Budget(id="BU-2", account_id="A-2", status=ProcessStatus.CANCELED))
    changes.put_collection_process(CollectionProcess(id="CP-1", account_id="A-2",
                                                     sa_ids=("SA-1",)))
    changes.put_severance_process(SeveranceProcess(
        id="SEV-1", sa_id="SA-1", status=ProcessStatus.CANCELED,
        events=(SeveranceEvent(event_type="notice", status=ProcessStatus.CANCELED),
                SeveranceEvent(event_type="disconnect"))))
    return changes


def entities_of(changes: Changes) -> dict[str, dict[str, Any]]:
    return {name: dict(getattr(changes, name)) for name in ccb_schema.ENTITY_TABLES}
