"""CCB entities (SPEC.md section 2).

Entities are immutable pydantic models; a command returns new versions of the entities it
changes (``model_copy(update=...)``) inside a :class:`~sync.ccb.changes.Changes`, and the store
persists them in one transaction. Identifiers are strings so that ids loaded from a customer's
own system keep their form.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- parties -------------------------------------------------------------------------------


class Phone(Entity):
    type: str = "home"
    number: str
    primary: bool = False


class Address(Entity):
    line1: str
    line2: str | None = None
    city: str
    state: str
    postal_code: str
    country: str = "US"

    def one_line(self) -> str:
        parts = [self.line1, self.line2, self.city, f"{self.state} {self.postal_code}"]
        return ", ".join(part for part in parts if part)


class Person(Entity):
    id: str
    name: str
    is_business: bool = False
    phones: tuple[Phone, ...] = ()
    email: str | None = None
    mailing_address: Address | None = None
    version: int = 1


class Account(Entity):
    id: str
    main_person_id: str
    other_person_ids: tuple[str, ...] = ()
    customer_class: str = "RES"
    bill_cycle: str = "BC01"
    mailing_premise_id: str | None = None
    mailing_address: Address | None = None
    division: str = "MAIN"
    final_bill_pending: bool = False
    version: int = 1


# --- premises and service points -----------------------------------------------------------


class Premise(Entity):
    id: str
    address: Address
    parent_premise_id: str | None = None
    landlord_agreement_id: str | None = None
    time_zone: str | None = None
    version: int = 1


class MeasuringComponent(Entity):
    id: str
    mc_class: str  # kWh, therm, gallon, ...
    channel: str = "direct"


class ServicePoint(Entity):
    id: str
    premise_id: str
    sp_type: str
    time_zone: str | None = None
    measuring_components: tuple[MeasuringComponent, ...] = ()
    meter_id: str | None = None
    version: int = 1


MMDD = r"^(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"


class SeasonalPreference(Entity):
    """One landlord preference row: for this service type, revert (optionally only in a
    season given as ``MMDD`` start/end, which may wrap the year end)."""

    service_type: str
    seasonal: bool = False
    season_start: str | None = Field(default=None, pattern=MMDD)
    season_end: str | None = Field(default=None, pattern=MMDD)


class LandlordAgreement(Entity):
    id: str
    landlord_person_id: str
    landlord_account_id: str
    preferences: tuple[SeasonalPreference, ...] = ()
    version: int = 1


# --- service agreements --------------------------------------------------------------------


class SaStatus(StrEnum):
    PENDING_START = "10"
    ACTIVE = "20"
    PENDING_STOP = "30"
    STOPPED = "40"
    REACTIVATED = "50"
    CLOSED = "60"
    CANCELED = "70"

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").lower()


class CreatedBy(Entity):
    """Who started (or stopped) an SA: a customer request or the system, with the reason and the
    reciprocal SA for system-generated starts/stops (landlord reversion)."""

    kind: str = "customer"  # customer | system
    reason: str | None = None
    reciprocal_sa_id: str | None = None


class AuditEntry(Entity):
    at: dt.datetime
    user: str
    action: str
    from_status: SaStatus | None = None
    to_status: SaStatus | None = None
    details: str = ""


class ServiceAgreement(Entity):
    id: str
    account_id: str
    sa_type: str
    status: SaStatus
    start_date: dt.date
    end_date: dt.date | None = None
    premise_id: str | None = None
    master_sa_id: str | None = None
    created_by: CreatedBy = CreatedBy()
    stopped_by: CreatedBy | None = None
    forwarding_address: Address | None = None
    audit: tuple[AuditEntry, ...] = ()
    # Optimistic concurrency: the store refuses to write a version it did not read.
    version: int = 1

    def serves_on(self, day: dt.date) -> bool:
        """In service at its premise on ``day``: active, pending stop or reactivated, started
        and not yet ended. A pending start does not serve until SAACT activates it: a unit
        whose only tenant SA is an incoming start is vacant until then (the console's premise
        tree and the API's agree on this)."""
        return (self.status in SERVING_STATUSES and self.start_date <= day
                and (self.end_date is None or self.end_date > day))


SERVING_STATUSES = frozenset({SaStatus.ACTIVE, SaStatus.PENDING_STOP, SaStatus.REACTIVATED})
# The statuses in which an SA still takes part in the account's and the service points'
# decisions (consequences of a stop, reversion, a next tenant's start); the rest is history.
IN_SERVICE = frozenset({SaStatus.PENDING_START, SaStatus.ACTIVE, SaStatus.PENDING_STOP})


class UsageFlag(StrEnum):
    PLUS = "+"
    MINUS = "-"
    CHECK = "check"


class SaSpLink(Entity):
    id: str
    sa_id: str
    sp_id: str
    start_date: dt.date
    stop_date: dt.date | None = None
    start_read: float | None = None
    stop_read: float | None = None
    usage_flag: UsageFlag = UsageFlag.PLUS
    use_percent: float = 100.0


# --- fieldwork and reads -------------------------------------------------------------------


class FaPurpose(StrEnum):
    START = "start"
    STOP = "stop"


class FaStatus(StrEnum):
    PENDING = "pending"
    COMPLETE = "complete"
    CANCELED = "canceled"


class FieldActivity(Entity):
    id: str
    fa_type: str
    sp_id: str
    sa_id: str
    sa_sp_link_id: str
    purpose: FaPurpose
    scheduled_date: dt.date
    status: FaStatus = FaStatus.PENDING
    completed_at: dt.datetime | None = None
    completion_read: float | None = Field(default=None, allow_inf_nan=False)


class ReadType(StrEnum):
    REGULAR = "regular"
    CUSTOMER = "customer"
    SYSTEM_PRORATED = "system_prorated"


class MeterRead(Entity):
    id: str
    sp_id: str
    read_at: dt.datetime
    # A register read is a finite number: an infinite or undefined one would poison every
    # interpolation and usage computed from it.
    value: float = Field(allow_inf_nan=False)
    read_type: ReadType = ReadType.REGULAR
    use_on_bill: bool = True


# --- To Do entries -------------------------------------------------------------------------


class ToDoStatus(StrEnum):
    OPEN = "open"
    BEING_WORKED = "being_worked"
    COMPLETE = "complete"


class DrillKey(Entity):
    """What a To Do entry points at, e.g. ``("sa", "SA-1")``; one open entry per type and key."""

    kind: str  # sa | fa | sync_request | contact | account
    id: str


class ToDoLogEntry(Entity):
    at: dt.datetime
    user: str
    comment: str


class ToDoEntry(Entity):
    id: str
    todo_type: str
    role: str
    status: ToDoStatus = ToDoStatus.OPEN
    message: str
    drill_key: DrillKey
    created_at: dt.datetime
    assigned_user: str | None = None
    log: tuple[ToDoLogEntry, ...] = ()
    version: int = 1


# --- customer contacts (seed 002) -----------------------------------------------------------


class ContactCharacteristic(Entity):
    type: str
    value: str


class ContactLogEntry(Entity):
    at: dt.datetime
    user: str
    comment: str


class ContactReminder(Entity):
    trigger_date: dt.date
    user: str | None = None
    role: str | None = None
    sent: bool = False


class CustomerContact(Entity):
    """A record of a customer's contact with the utility. Contacts belong to persons; the
    account and premise are optional context."""

    id: str
    person_id: str
    account_id: str | None = None
    premise_id: str | None = None
    contact_class: str
    contact_type: str
    contacted_at: dt.datetime
    method: str = "phone"  # phone | email | letter | in_person | web
    user: str
    comments: str = ""
    open: bool = False
    log: tuple[ContactLogEntry, ...] = ()
    characteristics: tuple[ContactCharacteristic, ...] = ()
    reminders: tuple[ContactReminder, ...] = ()
    letter_template: str | None = None
    letter_queued: bool = False
    version: int = 1


# --- finance and the processes a stop ends (SPEC.md sections 2 and 4) -----------------------

MONEY_DIGITS = 14
Money = Annotated[Decimal, Field(max_digits=MONEY_DIGITS, decimal_places=2)]
# The largest amount either way that ``Money`` holds (999999999999.99): input parsers refuse
# beyond it by name, before an amount reaches the model or decimal arithmetic.
MAX_MONEY = Decimal(10) ** (MONEY_DIGITS - 2) - Decimal("0.01")


class FtKind(StrEnum):
    BILL_SEGMENT = "bill_segment"
    PAYMENT = "payment"
    ADJUSTMENT = "adjustment"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class FtStatus(StrEnum):
    FROZEN = "frozen"
    CANCELED = "canceled"


class FinancialTransaction(Entity):
    """A frozen financial effect on an SA. ``amount`` is what the customer owes: a charge is
    positive, a payment or a credit is negative. A canceled FT no longer counts in the balance
    but stays, with its cancel reason, for the history."""

    id: str
    sa_id: str
    kind: FtKind
    amount: Money
    status: FtStatus = FtStatus.FROZEN
    accounting_date: dt.date
    # A bill segment that closes the SA's billing (the final bill after a stop).
    closing_bill_segment: bool = False
    adjustment_type: str | None = None  # admin ``adjustment_types``; adjustments only
    cancel_reason: str | None = None  # admin ``ft_cancel_reasons``
    canceled_on: dt.date | None = None
    version: int = 1


class ProcessStatus(StrEnum):
    """Status of a budget, a collection or severance process (or one of its events)."""

    ACTIVE = "active"
    EXPIRED = "expired"
    CANCELED = "canceled"


class Budget(Entity):
    """A budget plan of an account over the SAs it covers. A non-billed budget expires when it
    covers no SA any more (steps 3.5-3.6); a (billed) budget is canceled when the account's
    last active SA stops (step 4.2)."""

    id: str
    account_id: str
    non_billed: bool = False
    sa_ids: tuple[str, ...] = ()
    status: ProcessStatus = ProcessStatus.ACTIVE
    version: int = 1


class CollectionProcess(Entity):
    """Collection of an account's overdue debt on some of its SAs (steps 3.8-3.9)."""

    id: str
    account_id: str
    sa_ids: tuple[str, ...] = ()
    status: ProcessStatus = ProcessStatus.ACTIVE
    version: int = 1


class SeveranceEvent(Entity):
    event_type: str  # e.g. notice, disconnect
    status: ProcessStatus = ProcessStatus.ACTIVE


class SeveranceProcess(Entity):
    """The steps towards cutting off service of one SA for non-payment (step 3.7)."""

    id: str
    sa_id: str
    events: tuple[SeveranceEvent, ...] = ()
    status: ProcessStatus = ProcessStatus.ACTIVE
    version: int = 1
