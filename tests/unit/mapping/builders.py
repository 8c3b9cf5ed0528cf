"""Builders for wire messages: a valid message by default, override what the test is about."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sync.mapping.messages import (
    AccountAttributes,
    MeasuringComponentSnapshot,
    PersonSyncMessage,
    PhoneSnapshot,
    SaRelationshipSyncMessage,
    SaSyncMessage,
    ServicePointSnapshot,
    SpLinkSnapshot,
)

START = dt.date(2025, 3, 1)
EVENT_TIME = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


def service_point(sp_id: str = "SP-1", *, sp_type: str = "E-RES", mc_class: str = "kWh",
                  version: int = 1) -> ServicePointSnapshot:
    return ServicePointSnapshot(
        sp_id=sp_id, sp_type=sp_type, premise_id="PR-1", meter_id=f"M-{sp_id}", version=version,
        measuring_components=(MeasuringComponentSnapshot(mc_id=f"{sp_id}-MC", mc_class=mc_class),))


def sa_message(external_id: str = "SA-1", *, version: int = 1, sa_status: str = "20",
               start: dt.date = START, end: dt.date | None = None,
               sp_ids: tuple[str, ...] = ("SP-1",), **fields: Any) -> SaSyncMessage:
    """A valid E-RES SA snapshot linking ``sp_ids`` over the whole SA period."""
    values: dict[str, Any] = {
        "external_id": external_id, "version": version,
        "sync_request_id": f"SR-{external_id}-{version}", "event_time": EVENT_TIME,
        "sa_type": "E-RES", "us_type": "E-RES-US", "sa_status": sa_status,
        "start_date": start, "end_date": end, "external_account_id": "ACCT-1",
        "account": AccountAttributes(account_id="ACCT-1", customer_class="RES",
                                     bill_cycle="BC01", division="MAIN"),
        "division": "MAIN", "main_contact": "PER-1", "premise_id": "PR-1",
        "sp_links": tuple(SpLinkSnapshot(sp_id=sp_id, start_date=start, stop_date=end,
                                         start_read=1200.5)
                          for sp_id in sp_ids),
        "service_points": tuple(service_point(sp_id) for sp_id in sp_ids),
    }
    values.update(fields)
    return SaSyncMessage(**values)


def person_message(external_id: str = "PER-1", *, version: int = 1,
                   **fields: Any) -> PersonSyncMessage:
    values: dict[str, Any] = {
        "external_id": external_id, "version": version,
        "sync_request_id": f"SR-{external_id}-{version}", "event_time": EVENT_TIME,
        "name": "TENANT,TOM", "email": "tom@example.com",
        "phones": (PhoneSnapshot(number="217-555-0100", primary=True),),
    }
    values.update(fields)
    return PersonSyncMessage(**values)


def relationship_message(external_id: str = "SA-SUB", *, version: int = 1,
                         **fields: Any) -> SaRelationshipSyncMessage:
    values: dict[str, Any] = {
        "external_id": external_id, "version": version,
        "sync_request_id": f"SR-{external_id}-{version}", "event_time": EVENT_TIME,
        "master_external_id": "SA-1", "start_date": START,
    }
    values.update(fields)
    return SaRelationshipSyncMessage(**values)
