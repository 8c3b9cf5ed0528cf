"""Commands MDM applies: the desired state of one entity, as CCB last saw it.

Every command is a full snapshot carrying the CCB version of the entity, so applying is
idempotent: a command whose version is not newer than the one applied is a duplicate.

A usage subscription command may carry copies of the service points it links
(``service_points``): the US sync message is a full SA snapshot including its SPs, so one message
is enough to apply it even when the SPs were never sent on their own. Carried copies follow the
same version rule as :class:`UpsertServicePoint` (an older copy never replaces a newer one).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sync.mdm.model import (
    ContactPhone,
    FactorOverride,
    MeasuringComponent,
    ServicePointCopy,
    UsageGroupAssignment,
    UsSpLink,
    UsStatus,
    us_status_for,
)


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UpsertContact(Command):
    contact_id: str = Field(min_length=1)
    name: str
    phones: tuple[ContactPhone, ...] = ()
    email: str | None = None
    is_business: bool = False
    version: int = Field(ge=1)
    sync_request_id: str | None = None

    @property
    def entity_id(self) -> str:
        return self.contact_id


class UpsertServicePoint(Command):
    sp_id: str = Field(min_length=1)
    sp_type: str
    time_zone: str | None = None
    measuring_components: tuple[MeasuringComponent, ...] = ()
    meter_id: str | None = None
    version: int = Field(ge=1)
    sync_request_id: str | None = None

    @property
    def entity_id(self) -> str:
        return self.sp_id

    def service_point_copy(self) -> ServicePointCopy:
        return ServicePointCopy(
            sp_id=self.sp_id, sp_type=self.sp_type, time_zone=self.time_zone,
            measuring_components=self.measuring_components, meter_id=self.meter_id,
            version=self.version,
        )


class UpsertUsageSubscription(Command):
    external_id: str = Field(min_length=1)  # SA id
    external_account_id: str
    us_type: str
    sa_status: str  # CCB SA status code "10".."70"; the US status is derived from it
    start_date: dt.date
    end_date: dt.date | None = None
    time_zone: str | None = None  # blank: defaulted by D1-DEFTIMZON
    main_contact_id: str | None = None
    division: str | None = None
    master_external_id: str | None = None
    sp_links: tuple[UsSpLink, ...] = ()
    # None: derived from the US type's configured usage groups.
    usage_groups: tuple[UsageGroupAssignment, ...] | None = None
    factor_overrides: tuple[FactorOverride, ...] = ()
    service_points: tuple[ServicePointCopy, ...] = ()
    version: int = Field(ge=1)
    sync_request_id: str | None = None

    @field_validator("sa_status")
    @classmethod
    def _known_sa_status(cls, value: str) -> str:
        us_status_for(value)
        return value

    @property
    def entity_id(self) -> str:
        return self.external_id

    @property
    def us_status(self) -> UsStatus:
        return us_status_for(self.sa_status)


MdmCommand = UpsertUsageSubscription | UpsertServicePoint | UpsertContact
