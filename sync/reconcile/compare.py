"""What CCB says MDM should hold, compared with what MDM holds.

The *expected* side is a plain value, :class:`ExpectedUsageSubscription`: the usage subscription
fields MDM is told about one SA, plus the version of the snapshot that told it. It is built the
same way whatever the source is, through the mapping the live pipeline uses
(:func:`~sync.mapping.sa_to_us.usage_subscription_command`):

- from CCB's current state (:func:`expected_from_ccb`, a snapshot per SA, the version from the
  outbox), or
- from a sync message, e.g. the latest one per key replayed from the sync topic
  (:func:`expected_from_message`).

:func:`compare` then reports one :class:`Drift` per difference: a US missing in MDM, a US MDM
holds for no expected SA, a US behind (or ahead of) the expected version, a status that
disagrees, and every other field that differs, with its path and both values. Pure: no store,
no bus, no clock; a three-way comparison (CCB, topic, MDM) is two calls.

What MDM derives on its own is not compared: usage groups, factor overrides and the info string
come from MDM's configuration, and a blank time zone is MDM's to default (``D1-DEFTIMZON``), so
the time zone is compared only when CCB sends one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig
from sync.mapping.messages import SaSyncMessage
from sync.mapping.sa_to_us import usage_subscription_command
from sync.mapping.snapshots import Delivery, sa_snapshot
from sync.mdm.commands import UpsertUsageSubscription
from sync.mdm.model import UsageSubscription, UsSpLink, UsStatus

Value = str | int | float | bool | None
T = TypeVar("T")


class DriftKind(StrEnum):
    MISSING_IN_MDM = "MISSING_IN_MDM"
    EXTRA_IN_MDM = "EXTRA_IN_MDM"
    STALE_VERSION = "STALE_VERSION"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    FIELD_DIFFERENCE = "FIELD_DIFFERENCE"


@dataclass(frozen=True)
class ExpectedUsageSubscription:
    """The US MDM should hold for one SA. ``version`` is the snapshot version MDM should have
    applied; None when unknown (then versions are not compared)."""

    external_id: str
    external_account_id: str
    us_type: str
    sa_status: str
    status: UsStatus
    start_date: dt.date
    end_date: dt.date | None
    time_zone: str | None
    main_contact_id: str | None
    division: str | None
    master_external_id: str | None
    sp_links: tuple[UsSpLink, ...]
    version: int | None = None

    @classmethod
    def from_command(cls, command: UpsertUsageSubscription) -> ExpectedUsageSubscription:
        return cls(
            external_id=command.external_id, external_account_id=command.external_account_id,
            us_type=command.us_type, sa_status=command.sa_status, status=command.us_status,
            start_date=command.start_date, end_date=command.end_date,
            time_zone=command.time_zone.strip() if command.time_zone else None,
            main_contact_id=command.main_contact_id, division=command.division,
            master_external_id=command.master_external_id, sp_links=command.sp_links,
            version=command.version)


def expected_from_message(message: SaSyncMessage) -> ExpectedUsageSubscription | None:
    """The US a sync message asks for; None when the SA type maps to no US type."""
    command = usage_subscription_command(message)
    return None if command is None else ExpectedUsageSubscription.from_command(command)


# Delivery fields do not reach the US; these stand in for them when snapshotting for comparison.
_NO_DELIVERY = Delivery(version=1, sync_request_id="(comparison)",
                        event_time=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))


def expected_from_ccb(view: CcbView, admin: AdminConfig, sa_ids: Iterable[str],
                      versions: Mapping[str, int]) -> list[ExpectedUsageSubscription]:
    """The USs CCB's current state asks for, one per SA in ``sa_ids`` whose type maps to a US
    type; ``versions`` is the snapshot version per SA id that MDM should have applied (the
    outbox's newest request that was not discarded)."""
    expected = []
    for sa_id in sa_ids:
        found = expected_from_message(sa_snapshot(view, admin, sa_id, _NO_DELIVERY))
        if found is not None:
            expected.append(replace(found, version=versions.get(sa_id)))
    return expected


# --- drift ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """One difference for one SA / US. ``field`` is the US field path (``endDate``,
    ``spLinks[0].stop``) when the drift is about a field."""

    kind: DriftKind
    entity_id: str
    message: str
    field: str | None = None
    ccb_value: Value = None
    mdm_value: Value = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "entity_id": self.entity_id, "field": self.field,
                "ccb": self.ccb_value, "mdm": self.mdm_value, "message": self.message}


@dataclass(frozen=True)
class Comparison:
    drifts: tuple[Drift, ...]
    expected: int  # SAs that should have a US
    actual: int  # USs MDM holds

    @property
    def agree(self) -> bool:
        return not self.drifts

    def counts(self) -> dict[str, int]:
        """Drifts per kind, every kind present (zero included)."""
        found = Counter(drift.kind for drift in self.drifts)
        return {kind.value: found[kind] for kind in DriftKind}

    def summary(self) -> str:
        what = (f"{self.expected} SAs, {self.actual} usage subscriptions, "
                f"{len(self.drifts)} difference{'' if len(self.drifts) == 1 else 's'}")
        return f"CCB and MDM {'agree' if self.agree else 'disagree'}: {what}"

    def to_dict(self) -> dict[str, Any]:
        return {"agree": self.agree, "expected": self.expected, "actual": self.actual,
                "counts": self.counts(), "drifts": [drift.to_dict() for drift in self.drifts],
                "summary": self.summary()}


def compare(expected: Iterable[ExpectedUsageSubscription],
            actual: Iterable[UsageSubscription]) -> Comparison:
    """Every drift between ``expected`` and ``actual``, by entity id then kind."""
    wanted = _by_id(expected, lambda item: item.external_id, "expected usage subscription")
    held = _by_id(actual, lambda item: item.external_id, "usage subscription")
    drifts: list[Drift] = []
    for entity_id in sorted(wanted.keys() | held.keys()):
        want, have = wanted.get(entity_id), held.get(entity_id)
        if have is None:
            assert want is not None
            drifts.append(Drift(DriftKind.MISSING_IN_MDM, entity_id,
                                f"MDM holds no usage subscription for SA {entity_id} "
                                f"({want.status.value} from {want.start_date.isoformat()})"))
        elif want is None:
            drifts.append(Drift(DriftKind.EXTRA_IN_MDM, entity_id,
                                f"MDM holds usage subscription {entity_id} ({have.status.value})"
                                " for no SA that should have one"))
        else:
            drifts.extend(compare_one(want, have))
    return Comparison(tuple(drifts), expected=len(wanted), actual=len(held))


def compare_one(want: ExpectedUsageSubscription, have: UsageSubscription) -> list[Drift]:
    """The drifts between one expected US and the one MDM holds (same external id)."""
    drifts = []
    entity_id = want.external_id
    if want.version is not None and want.version != have.last_applied_version:
        side = "behind" if have.last_applied_version < want.version else "ahead of"
        drifts.append(Drift(
            DriftKind.STALE_VERSION, entity_id,
            f"MDM applied version {have.last_applied_version}, {side} CCB's version "
            f"{want.version}", "lastAppliedVersion", want.version, have.last_applied_version))
    if want.status is not have.status:
        drifts.append(Drift(
            DriftKind.STATUS_MISMATCH, entity_id,
            f"SA status {want.sa_status} means {want.status.value}; MDM has "
            f"{have.status.value}", "status", want.status.value, have.status.value))
    for path, ccb_value, mdm_value in _field_pairs(want, have):
        if ccb_value != mdm_value:
            drifts.append(Drift(DriftKind.FIELD_DIFFERENCE, entity_id,
                                f"{path}: CCB {_show(ccb_value)}, MDM {_show(mdm_value)}",
                                path, _value(ccb_value), _value(mdm_value)))
    drifts.extend(_link_drifts(entity_id, want.sp_links, have.sp_links))
    return drifts


def _field_pairs(want: ExpectedUsageSubscription,
                 have: UsageSubscription) -> list[tuple[str, object, object]]:
    pairs: list[tuple[str, object, object]] = [
        ("externalAccountId", want.external_account_id, have.external_account_id),
        ("usType", want.us_type, have.us_type),
        ("startDate", want.start_date, have.start_date),
        ("endDate", want.end_date, have.end_date),
        ("mainContactId", want.main_contact_id, have.main_contact_id),
        ("division", want.division, have.division),
        ("masterExternalId", want.master_external_id, have.master_external_id),
    ]
    if want.time_zone is not None:
        pairs.append(("timeZone", want.time_zone, have.time_zone))
    return pairs


_LINK_FIELDS: tuple[tuple[str, Callable[[UsSpLink], object]], ...] = (
    ("spId", lambda link: link.sp_id),
    ("start", lambda link: link.start),
    ("stop", lambda link: link.stop),
    ("usageFlag", lambda link: link.usage_flag.value),
    ("usePercent", lambda link: link.use_percent),
)


def _link_drifts(entity_id: str, wanted: tuple[UsSpLink, ...],
                 held: tuple[UsSpLink, ...]) -> list[Drift]:
    """Links in period order; a different number of links is one drift on ``spLinks``."""
    want, have = _in_order(wanted), _in_order(held)
    if len(want) != len(have):
        ccb_text, mdm_text = _links_text(want), _links_text(have)
        return [Drift(DriftKind.FIELD_DIFFERENCE, entity_id,
                      f"spLinks: CCB {len(want)} link(s) {ccb_text}, MDM {len(have)} link(s) "
                      f"{mdm_text}", "spLinks", ccb_text, mdm_text)]
    drifts = []
    for index, (ours, theirs) in enumerate(zip(want, have, strict=True)):
        for name, get in _LINK_FIELDS:
            ccb_value, mdm_value = get(ours), get(theirs)
            if ccb_value != mdm_value:
                path = f"spLinks[{index}].{name}"
                drifts.append(Drift(DriftKind.FIELD_DIFFERENCE, entity_id,
                                    f"{path}: CCB {_show(ccb_value)}, MDM {_show(mdm_value)}",
                                    path, _value(ccb_value), _value(mdm_value)))
    return drifts


def _in_order(links: tuple[UsSpLink, ...]) -> list[UsSpLink]:
    return sorted(links, key=lambda link: (link.start, link.sp_id))


def _links_text(links: list[UsSpLink]) -> str:
    return "[" + ", ".join(f"{link.sp_id} {link.start.isoformat()} to "
                           f"{link.stop.isoformat() if link.stop else 'open'}"
                           for link in links) + "]"


def _by_id(items: Iterable[T], key: Callable[[T], str], what: str) -> dict[str, T]:
    found: dict[str, T] = {}
    for item in items:
        item_id = key(item)
        if item_id in found:
            raise ValueError(f"{what} {item_id!r} appears twice; each SA is compared once")
        found[item_id] = item
    return found


def _value(value: object) -> Value:
    """A JSON-ready value: dates as ISO text, enums as their value."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _show(value: object) -> str:
    shown = _value(value)
    return "(none)" if shown is None else str(shown)
