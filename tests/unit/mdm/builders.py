"""Builders for MDM test data: realistic defaults, override what the test is about."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sync.config.admin import AdminConfig, load_admin_config
from sync.mdm.commands import UpsertUsageSubscription
from sync.mdm.context import ValidationContext
from sync.mdm.model import (
    MeasuringComponent,
    ServicePointCopy,
    UsageGroupAssignment,
    UsageSubscription,
    UsSpLink,
    UsStatus,
)

D = dt.date
START = D(2025, 3, 1)
BASE_ZONE = "America/Chicago"


def default_admin(**installation: Any) -> AdminConfig:
    admin = load_admin_config()
    if installation:
        admin = admin.model_copy(update={
            "installation": admin.installation.model_copy(update=installation)})
    return admin


def sp_copy(sp_id: str = "SP-1", *, sp_type: str = "E-RES", time_zone: str | None = None,
            mc_class: str = "kWh", channel: str = "direct", version: int = 1,
            components: Sequence[MeasuringComponent] | None = None) -> ServicePointCopy:
    if components is None:
        components = (MeasuringComponent(mc_id=f"{sp_id}-MC", mc_class=mc_class,
                                         channel=channel),)
    return ServicePointCopy(sp_id=sp_id, sp_type=sp_type, time_zone=time_zone,
                            measuring_components=tuple(components), meter_id=f"M-{sp_id}",
                            version=version)


def links(*sp_ids: str, start: dt.date = START, stop: dt.date | None = None
          ) -> tuple[UsSpLink, ...]:
    return tuple(UsSpLink(sp_id=sp_id, start=start, stop=stop) for sp_id in sp_ids)


def us_command(external_id: str = "SA-1", *, version: int = 1, sa_status: str = "20",
               start: dt.date = START, end: dt.date | None = None,
               sp_ids: Sequence[str] = ("SP-1",), sp_type: str = "E-RES",
               carry: bool = True, **fields: Any) -> UpsertUsageSubscription:
    """A valid E-RES-US command for an SA linking ``sp_ids`` over the whole SA period."""
    values: dict[str, Any] = {
        "external_id": external_id, "external_account_id": "ACCT-1", "us_type": "E-RES-US",
        "sa_status": sa_status, "start_date": start, "end_date": end,
        "main_contact_id": "PER-1", "division": "MAIN",
        "sp_links": links(*sp_ids, start=start, stop=end),
        "service_points": tuple(sp_copy(sp_id, sp_type=sp_type) for sp_id in sp_ids)
        if carry else (),
        "version": version, "sync_request_id": f"SR-{external_id}-{version}",
    }
    values.update(fields)
    return UpsertUsageSubscription(**values)


TOU = UsageGroupAssignment(group="E-RES-TOU", start=D(2024, 1, 1))


def subscription(external_id: str = "SA-1", *, status: UsStatus = UsStatus.ACTIVE,
                 start: dt.date = START, end: dt.date | None = None,
                 sp_ids: Sequence[str] = ("SP-1",), **fields: Any) -> UsageSubscription:
    """A valid stored E-RES-US usage subscription."""
    values: dict[str, Any] = {
        "external_id": external_id, "external_account_id": "ACCT-1", "us_type": "E-RES-US",
        "status": status, "start_date": start, "end_date": end, "time_zone": BASE_ZONE,
        "sp_links": links(*sp_ids, start=start, stop=end), "usage_groups": (TOU,),
        "last_applied_version": 1,
    }
    values.update(fields)
    return UsageSubscription(**values)


def context(admin: AdminConfig, *sps: ServicePointCopy, **fields: Any) -> ValidationContext:
    if not sps:
        sps = (sp_copy(),)
    return ValidationContext(admin=admin, service_points={sp.sp_id: sp for sp in sps},
                             **fields)
