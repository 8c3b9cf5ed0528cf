"""CCB tables (SQLAlchemy Core) and the mapping between rows and CCB entities.

Columns that queries filter or sort on (status, dates, account, premise, SP, type, drill key)
are real, indexed columns; nested value objects (phones, addresses, audit and log entries,
preferences, measuring components, characteristics, reminders) are JSON documents, read back
through the pydantic models so that their validation still applies.

Timestamps are stored as UTC instants (PostgreSQL ``timestamptz``; on SQLite a naive UTC value)
and come back as aware UTC datetimes: the instant survives, the original offset does not.
Naive timestamps are refused, because their instant is unknown.

Foreign keys are ``DEFERRABLE INITIALLY DEFERRED``: one command (or one load file) may write a
premise before the landlord agreement it names, and the database checks references at commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import cached_property
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

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
    ToDoStatus,
)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as its UTC instant, read back as an aware UTC datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored: "
                             "its instant is unknown (give a time zone)")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Cents(TypeDecorator[Decimal]):
    """Money stored as a whole number of cents: exact on every database (SQLite has no
    decimal type), so that a balance sums to exactly zero when it should."""

    impl = BigInteger()
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        cents = value * 100
        if cents != cents.to_integral_value():
            raise ValueError(f"amount {value} has more than two decimal places")
        return int(cents)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(int(value)).scaleb(-2)


Document = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
Sequence = BigInteger().with_variant(Integer(), "sqlite")
Id = String(64)
Code = String(32)

metadata = MetaData()


def _ref(target: str, use_alter: bool = False) -> ForeignKey:
    return ForeignKey(target, deferrable=True, initially="DEFERRED", use_alter=use_alter)


persons = Table(
    "ccb_persons", metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(254), nullable=False),
    # Lower-cased copy of the name: case-insensitive prefix search on an index.
    Column("name_key", String(254), nullable=False, index=True),
    Column("is_business", Boolean, nullable=False),
    Column("phones", Document, nullable=False),
    Column("email", String(254)),
    Column("mailing_address", Document),
    Column("version", Integer, nullable=False),
)

# Digits of every phone number of a person, kept in step with ``ccb_persons.phones`` so that a
# search by phone is an index lookup rather than a scan of JSON documents.
person_phones = Table(
    "ccb_person_phones", metadata,
    Column("person_id", Id, _ref("ccb_persons.id"), primary_key=True),
    Column("digits", String(32), primary_key=True),
    Index("ix_ccb_person_phones_digits", "digits"),
)

# Every person of an account (main and others), kept in step with ``ccb_accounts``: "the
# accounts of a person" is an index lookup.
account_persons = Table(
    "ccb_account_persons", metadata,
    Column("account_id", Id, _ref("ccb_accounts.id"), primary_key=True),
    Column("person_id", Id, _ref("ccb_persons.id"), primary_key=True),
    Column("is_main", Boolean, nullable=False),
    Index("ix_ccb_account_persons_person", "person_id"),
)

accounts = Table(
    "ccb_accounts", metadata,
    Column("id", Id, primary_key=True),
    Column("main_person_id", Id, _ref("ccb_persons.id"), nullable=False, index=True),
    Column("other_person_ids", Document, nullable=False),
    Column("customer_class", Code, nullable=False),
    Column("bill_cycle", Code, nullable=False),
    # Accounts -> premises -> landlord agreements -> accounts is a cycle: this key is added
    # after the tables exist.
    Column("mailing_premise_id", Id, _ref("ccb_premises.id", use_alter=True)),
    Column("mailing_address", Document),
    Column("division", Code, nullable=False),
    Column("final_bill_pending", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
)

premises = Table(
    "ccb_premises", metadata,
    Column("id", Id, primary_key=True),
    Column("address", Document, nullable=False),
    # Lower-cased one-line address: the search by premise address filters on it.
    Column("address_key", String(512), nullable=False, index=True),
    Column("postal_code", String(16), nullable=False, index=True),
    Column("parent_premise_id", Id, _ref("ccb_premises.id"), index=True),
    Column("landlord_agreement_id", Id, _ref("ccb_landlord_agreements.id"), index=True),
    Column("time_zone", String(64)),
    Column("version", Integer, nullable=False),
)

service_points = Table(
    "ccb_service_points", metadata,
    Column("id", Id, primary_key=True),
    Column("premise_id", Id, _ref("ccb_premises.id"), nullable=False, index=True),
    Column("sp_type", Code, nullable=False),
    Column("time_zone", String(64)),
    Column("measuring_components", Document, nullable=False),
    Column("meter_id", Id),
    Column("version", Integer, nullable=False),
)

landlord_agreements = Table(
    "ccb_landlord_agreements", metadata,
    Column("id", Id, primary_key=True),
    Column("landlord_person_id", Id, _ref("ccb_persons.id"), nullable=False),
    Column("landlord_account_id", Id, _ref("ccb_accounts.id"), nullable=False, index=True),
    Column("preferences", Document, nullable=False),
    Column("version", Integer, nullable=False),
)

service_agreements = Table(
    "ccb_service_agreements", metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, _ref("ccb_accounts.id"), nullable=False, index=True),
    Column("sa_type", Code, nullable=False),
    Column("status", String(2), nullable=False),
    Column("start_date", Date, nullable=False),
    Column("end_date", Date),
    Column("premise_id", Id, _ref("ccb_premises.id"), index=True),
    Column("master_sa_id", Id, _ref("ccb_service_agreements.id"), index=True),
    Column("created_by", Document, nullable=False),
    Column("stopped_by", Document),
    Column("forwarding_address", Document),
    Column("audit", Document, nullable=False),
    Column("version", Integer, nullable=False),
    # The batches scan pending starts by start date and pending stops by end date, a page at
    # a time in (date, id) order: with the id in the index a page is a pure range scan.
    Index("ix_ccb_sa_status_start", "status", "start_date", "id"),
    Index("ix_ccb_sa_status_end", "status", "end_date", "id"),
)

sa_sp_links = Table(
    "ccb_sa_sp_links", metadata,
    Column("id", Id, primary_key=True),
    Column("sa_id", Id, _ref("ccb_service_agreements.id"), nullable=False, index=True),
    Column("sp_id", Id, _ref("ccb_service_points.id"), nullable=False, index=True),
    Column("start_date", Date, nullable=False),
    Column("stop_date", Date),
    Column("start_read", Float),
    Column("stop_read", Float),
    Column("usage_flag", String(8), nullable=False),
    Column("use_percent", Float, nullable=False),
)

field_activities = Table(
    "ccb_field_activities", metadata,
    Column("id", Id, primary_key=True),
    Column("fa_type", Code, nullable=False),
    Column("sp_id", Id, _ref("ccb_service_points.id"), nullable=False, index=True),
    Column("sa_id", Id, _ref("ccb_service_agreements.id"), nullable=False, index=True),
    Column("sa_sp_link_id", Id, _ref("ccb_sa_sp_links.id"), nullable=False),
    Column("purpose", String(8), nullable=False),
    Column("scheduled_date", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("completed_at", UtcDateTime),
    Column("completion_read", Float),
    # The near-read batch pages through pending FAs in (scheduled date, id) order.
    Index("ix_ccb_fa_status_date", "status", "scheduled_date", "id"),
)

meter_reads = Table(
    "ccb_meter_reads", metadata,
    Column("id", Id, primary_key=True),
    Column("sp_id", Id, _ref("ccb_service_points.id"), nullable=False),
    Column("read_at", UtcDateTime, nullable=False),
    Column("value", Float, nullable=False),
    Column("read_type", String(16), nullable=False),
    Column("use_on_bill", Boolean, nullable=False),
    Index("ix_ccb_reads_sp_at", "sp_id", "read_at"),
)

_TODO_NOT_COMPLETE = text(f"status <> '{ToDoStatus.COMPLETE.value}'")

todos = Table(
    "ccb_todos", metadata,
    Column("id", Id, primary_key=True),
    Column("todo_type", Code, nullable=False),
    Column("role", Code, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("drill_kind", String(16), nullable=False),
    Column("drill_id", Id, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("assigned_user", String(64)),
    Column("log", Document, nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_ccb_todos_role_status", "role", "status"),
    Index("ix_ccb_todos_drill", "drill_kind", "drill_id"),
    # At most one unfinished To Do entry of a type per drill key (SPEC section 2).
    Index("ux_ccb_todos_open_per_key", "todo_type", "drill_kind", "drill_id", unique=True,
          sqlite_where=_TODO_NOT_COMPLETE, postgresql_where=_TODO_NOT_COMPLETE),
)

contacts = Table(
    "ccb_contacts", metadata,
    Column("id", Id, primary_key=True),
    Column("person_id", Id, _ref("ccb_persons.id"), nullable=False, index=True),
    Column("account_id", Id, _ref("ccb_accounts.id"), index=True),
    Column("premise_id", Id, _ref("ccb_premises.id")),
    Column("contact_class", Code, nullable=False),
    Column("contact_type", Code, nullable=False),
    Column("contacted_at", UtcDateTime, nullable=False),
    Column("method", String(16), nullable=False),
    Column("user", String(64), nullable=False),
    Column("comments", Text, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("log", Document, nullable=False),
    Column("characteristics", Document, nullable=False),
    Column("reminders", Document, nullable=False),
    Column("letter_template", Code),
    Column("letter_queued", Boolean, nullable=False),
    # Earliest trigger date of a reminder not yet sent: the reminder batch filters on it.
    Column("next_reminder_date", Date, index=True),
    Column("version", Integer, nullable=False),
)

financial_transactions = Table(
    "ccb_financial_transactions", metadata,
    Column("id", Id, primary_key=True),
    Column("sa_id", Id, _ref("ccb_service_agreements.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("amount", Cents, nullable=False),
    Column("status", String(16), nullable=False),
    Column("accounting_date", Date, nullable=False),
    Column("closing_bill_segment", Boolean, nullable=False),
    Column("adjustment_type", Code),
    Column("cancel_reason", Code),
    Column("canceled_on", Date),
    Column("version", Integer, nullable=False),
)

# Budgets and collection processes cover a list of SAs: a JSON document read per account.
budgets = Table(
    "ccb_budgets", metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, _ref("ccb_accounts.id"), nullable=False, index=True),
    Column("non_billed", Boolean, nullable=False),
    Column("sa_ids", Document, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
)

collection_processes = Table(
    "ccb_collection_processes", metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, _ref("ccb_accounts.id"), nullable=False, index=True),
    Column("sa_ids", Document, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
)

severance_processes = Table(
    "ccb_severance_processes", metadata,
    Column("id", Id, primary_key=True),
    Column("sa_id", Id, _ref("ccb_service_agreements.id"), nullable=False, index=True),
    Column("events", Document, nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
)

# The outbox hook: one row per "this entity changed", written in the transaction of the change.
entity_changes = Table(
    "entity_changes", metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("unit_id", String(36), nullable=False, index=True),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", Id, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Index("ix_entity_changes_entity", "entity_type", "entity_id"),
)

# Counters behind generated ids ("SA" -> 17 means the next SA id is SA-000017).
id_sequences = Table(
    "ccb_id_sequences", metadata,
    Column("kind", String(32), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)


# --- rows <-> entities -----------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


@dataclass(frozen=True)
class EntityTable:
    """How one entity class is stored: its table, its JSON columns, extra derived columns."""

    kind: str
    model: type[BaseModel]
    table: Table
    documents: frozenset[str]
    versioned: bool

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        """Every column of the table, in table order."""
        return tuple(column.name for column in self.table.c)

    @cached_property
    def _stored_fields(self) -> tuple[str, ...]:
        """The model's fields that are columns of the table."""
        return tuple(name for name in self.model.model_fields if name in self.table.c)

    def to_row(self, entity: BaseModel) -> dict[str, Any]:
        # Only the JSON documents go through pydantic's JSON dump; the columns are plain values.
        as_json = (entity.model_dump(mode="json", include=set(self.documents))
                   if self.documents else {})
        row = {name: as_json[name] if name in self.documents else _plain(getattr(entity, name))
               for name in self._stored_fields}
        row.update((name, value) for name, value in _derived(entity).items()
                   if name in self.table.c)
        return row

    def from_row(self, row: RowMapping | Mapping[str, Any]) -> Any:
        names = self._stored_fields
        if len(row) >= len(self.table.c):  # a whole row: every stored field is in it
            data = {name: row[name] for name in names}
        else:
            data = {name: row[name] for name in names if name in row}
        if self.model is ToDoEntry:
            data["drill_key"] = {"kind": row["drill_kind"], "id": row["drill_id"]}
        return self.model.model_validate(data)


def _derived(entity: BaseModel) -> dict[str, Any]:
    """Columns computed from the entity (search keys, drill key, next reminder)."""
    if isinstance(entity, Person):
        return {"name_key": entity.name.lower()}
    if isinstance(entity, Premise):
        return {"address_key": entity.address.one_line().lower(),
                "postal_code": entity.address.postal_code}
    if isinstance(entity, ToDoEntry):
        drill: DrillKey = entity.drill_key
        return {"drill_kind": drill.kind, "drill_id": drill.id}
    if isinstance(entity, CustomerContact):
        pending = [r.trigger_date for r in entity.reminders if not r.sent]
        return {"next_reminder_date": min(pending) if pending else None}
    return {}


def phone_rows(person: Person) -> list[dict[str, Any]]:
    numbers = {_digits(phone.number) for phone in person.phones}
    return [{"person_id": person.id, "digits": d} for d in sorted(numbers) if d]


def account_person_rows(account: Account) -> list[dict[str, Any]]:
    others = [p for p in dict.fromkeys(account.other_person_ids) if p != account.main_person_id]
    return [{"account_id": account.id, "person_id": account.main_person_id, "is_main": True},
            *({"account_id": account.id, "person_id": p, "is_main": False} for p in others)]


def phone_digits(number: str) -> str:
    return _digits(number)


def _table(kind: str, model: type[BaseModel], table: Table, *documents: str) -> EntityTable:
    return EntityTable(kind, model, table, frozenset(documents), "version" in model.model_fields)


PERSONS = _table("person", Person, persons, "phones", "mailing_address")
ACCOUNTS = _table("account", Account, accounts, "other_person_ids", "mailing_address")
PREMISES = _table("premise", Premise, premises, "address")
SERVICE_POINTS = _table("service point", ServicePoint, service_points, "measuring_components")
LANDLORD_AGREEMENTS = _table("landlord agreement", LandlordAgreement, landlord_agreements,
                             "preferences")
SAS = _table("SA", ServiceAgreement, service_agreements, "created_by", "stopped_by",
             "forwarding_address", "audit")
LINKS = _table("SA/SP link", SaSpLink, sa_sp_links)
FIELD_ACTIVITIES = _table("field activity", FieldActivity, field_activities)
READS = _table("meter read", MeterRead, meter_reads)
TODOS = _table("To Do", ToDoEntry, todos, "log")
CONTACTS = _table("contact", CustomerContact, contacts, "log", "characteristics",
                  "reminders")
FINANCIAL_TRANSACTIONS = _table("financial transaction", FinancialTransaction,
                                financial_transactions)
BUDGETS = _table("budget", Budget, budgets, "sa_ids")
COLLECTION_PROCESSES = _table("collection process", CollectionProcess, collection_processes,
                              "sa_ids")
SEVERANCE_PROCESSES = _table("severance process", SeveranceProcess, severance_processes,
                             "events")

# In the order a unit of work writes them (parents first, for readability of the SQL log;
# deferred foreign keys make the order irrelevant to correctness).
ENTITY_TABLES: dict[str, EntityTable] = {
    "persons": PERSONS,
    "accounts": ACCOUNTS,
    "landlord_agreements": LANDLORD_AGREEMENTS,
    "premises": PREMISES,
    "service_points": SERVICE_POINTS,
    "sas": SAS,
    "links": LINKS,
    "field_activities": FIELD_ACTIVITIES,
    "reads": READS,
    "todos": TODOS,
    "contacts": CONTACTS,
    "financial_transactions": FINANCIAL_TRANSACTIONS,
    "budgets": BUDGETS,
    "collection_processes": COLLECTION_PROCESSES,
    "severance_processes": SEVERANCE_PROCESSES,
}
