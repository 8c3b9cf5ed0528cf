"""MDM entities (SPEC.md section 5): contacts, service point copies, usage subscriptions.

MDM does not own customers or service points; it keeps copies of what CCB sends, enough to
validate and compute usage. A usage subscription (US) mirrors one CCB service agreement (SA): its
external id is the SA id, and its status is derived from the SA status.

Periods are half-open: a start date is the first day in effect and a stop/end date the first day
no longer in effect, so a tenant stopping on the day the landlord (or the next tenant) starts does
not overlap them. ``None`` as an end means open-ended.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Entity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- periods -------------------------------------------------------------------------------


def overlaps(start_a: dt.date, end_a: dt.date | None,
             start_b: dt.date, end_b: dt.date | None) -> bool:
    """Whether two half-open periods share at least one day (``None`` end = open)."""
    if end_a is not None and end_a <= start_a:
        return False  # empty period
    if end_b is not None and end_b <= start_b:
        return False
    return (end_b is None or start_a < end_b) and (end_a is None or start_b < end_a)


def period_text(start: dt.date, end: dt.date | None) -> str:
    return f"{start.isoformat()} to {end.isoformat() if end else 'open'}"


# --- contacts and service point copies -----------------------------------------------------


class ContactPhone(Entity):
    type: str = "home"
    number: str
    primary: bool = False


class Contact(Entity):
    """MDM's copy of a CCB person, the main contact of usage subscriptions."""

    contact_id: str
    name: str
    is_business: bool = False
    phones: tuple[ContactPhone, ...] = ()
    email: str | None = None
    version: int = Field(ge=1)


DIRECT_CHANNEL = "direct"


class MeasuringComponent(Entity):
    mc_id: str
    mc_class: str  # kWh, therm, gallon, ...
    channel: str = DIRECT_CHANNEL


class ServicePointCopy(Entity):
    """MDM's copy of a CCB service point with the measuring components that record its usage."""

    sp_id: str
    sp_type: str
    time_zone: str | None = None
    measuring_components: tuple[MeasuringComponent, ...] = ()
    meter_id: str | None = None
    version: int = Field(ge=1)


# --- usage subscriptions --------------------------------------------------------------------


class UsStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


# SA status code (CCB) -> US status (SPEC.md section 5): pending start is pending; active,
# pending stop and reactivated still measure usage; stopped, closed and canceled do not.
US_STATUS_FOR_SA_STATUS: dict[str, UsStatus] = {
    "10": UsStatus.PENDING,
    "20": UsStatus.ACTIVE,
    "30": UsStatus.ACTIVE,
    "50": UsStatus.ACTIVE,
    "40": UsStatus.INACTIVE,
    "60": UsStatus.INACTIVE,
    "70": UsStatus.INACTIVE,
}


def us_status_for(sa_status: str) -> UsStatus:
    try:
        return US_STATUS_FOR_SA_STATUS[sa_status]
    except KeyError:
        known = ", ".join(sorted(US_STATUS_FOR_SA_STATUS))
        raise ValueError(f"unknown SA status {sa_status!r} (known: {known})") from None


class UsageFlag(StrEnum):
    PLUS = "+"
    MINUS = "-"
    CHECK = "check"


class UsSpLink(Entity):
    """A service point whose usage the subscription takes, from ``start`` until ``stop``."""

    sp_id: str
    start: dt.date
    stop: dt.date | None = None
    usage_flag: UsageFlag = UsageFlag.PLUS
    use_percent: float = Field(default=100.0, ge=0, le=100)


class UsageGroupAssignment(Entity):
    """The usage group (how usage is calculated) in effect on the US for a period."""

    group: str
    start: dt.date
    end: dt.date | None = None


class FactorOverride(Entity):
    factor: str
    value: float
    start: dt.date
    end: dt.date | None = None


class UsageSubscription(Entity):
    external_id: str  # the CCB SA id
    external_account_id: str
    us_type: str
    status: UsStatus
    start_date: dt.date
    end_date: dt.date | None = None
    time_zone: str | None = None
    main_contact_id: str | None = None
    division: str | None = None
    master_external_id: str | None = None
    sp_links: tuple[UsSpLink, ...] = ()
    usage_groups: tuple[UsageGroupAssignment, ...] = ()
    factor_overrides: tuple[FactorOverride, ...] = ()
    last_applied_version: int = Field(ge=1)
    sync_request_id: str | None = None
    info: str = ""

    @property
    def is_inactive(self) -> bool:
        return self.status is UsStatus.INACTIVE

    def sp_ids(self) -> tuple[str, ...]:
        """Distinct SP ids in link order."""
        return tuple(dict.fromkeys(link.sp_id for link in self.sp_links))


class ValidationError(Entity):
    """One failed rule: the algorithm that found it, the field (wire name, e.g.
    ``spLinks[1].stop``) and what is wrong."""

    code: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.path}: {self.message}"
