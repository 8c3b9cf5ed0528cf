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
from sync.ccb.sync_requests import SyncRequest, SyncRequestState
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


class TopicDriftKind(StrEnum):
    """Where the sync topic's latest message of an SA disagrees with CCB's current state."""

    NOT_PUBLISHED = "NOT_PUBLISHED"  # CCB expects a US; the topic holds no message for the SA
    TOPIC_BEHIND = "TOPIC_BEHIND"  # the topic's latest version is older than CCB's
    TOPIC_AHEAD = "TOPIC_AHEAD"  # the topic carries a version CCB does not stand by
    TOPIC_DIFFERS = "TOPIC_DIFFERS"  # same version (or unknown), different content
    NOT_IN_CCB = "NOT_IN_CCB"  # the topic asks for a US CCB does not expect


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

    kind: DriftKind | TopicDriftKind
    entity_id: str
    message: str
    field: str | None = None
    ccb_value: Value = None
    mdm_value: Value = None  # for a TopicDriftKind: the topic's value

    @property
    def side(self) -> str:
        """Which side disagrees with CCB: ``MDM`` or ``TOPIC``."""
        return "TOPIC" if isinstance(self.kind, TopicDriftKind) else "MDM"

    def to_dict(self) -> dict[str, Any]:
        other = "topic" if self.side == "TOPIC" else "mdm"
        return {"kind": self.kind.value, "entity_id": self.entity_id, "field": self.field,
                "ccb": self.ccb_value, other: self.mdm_value, "message": self.message}


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


# --- CCB against the sync topic ---------------------------------------------------------------


def snapshot_versions(requests: Iterable[SyncRequest]) -> dict[str, int]:
    """Per entity id, the snapshot version MDM should hold: that of its newest request that was
    not discarded (a discarded request carried a snapshot equal to the one already sent, or was
    superseded by a later request)."""
    versions: dict[str, int] = {}
    for request in requests:
        if request.state is not SyncRequestState.DISCARDED:
            versions[request.entity_id] = max(request.version,
                                              versions.get(request.entity_id, 0))
    return versions


def compare_topic(ccb: Iterable[ExpectedUsageSubscription],
                  topic: Iterable[ExpectedUsageSubscription], *,
                  complete: bool = True) -> list[Drift]:
    """Every way the topic's latest message per SA (``topic``) disagrees with CCB's current
    state (``ccb``), by entity id. ``complete`` False (a replay from a point in time) judges
    only the SAs the topic holds: an SA without a message is then older, not unpublished."""
    wanted = _by_id(ccb, lambda item: item.external_id, "expected usage subscription")
    sent = _by_id(topic, lambda item: item.external_id, "topic usage subscription")
    drifts: list[Drift] = []
    for entity_id in sorted(wanted.keys() | sent.keys()):
        want, message = wanted.get(entity_id), sent.get(entity_id)
        if message is None:
            assert want is not None
            if complete:
                drifts.append(Drift(
                    TopicDriftKind.NOT_PUBLISHED, entity_id,
                    f"the topic holds no message for SA {entity_id}; CCB expects a "
                    f"{want.status.value} usage subscription", "version", want.version, None))
        elif want is None:
            drifts.append(Drift(
                TopicDriftKind.NOT_IN_CCB, entity_id,
                f"the topic's version {message.version} asks for usage subscription "
                f"{entity_id}; CCB has no SA that should have one", "version", None,
                message.version))
        else:
            drifts.extend(_topic_drifts(want, message))
    return drifts


def _topic_drifts(want: ExpectedUsageSubscription,
                  message: ExpectedUsageSubscription) -> list[Drift]:
    entity_id = want.external_id
    if want.version is not None and message.version is not None \
            and want.version != message.version:
        behind = message.version < want.version
        kind = TopicDriftKind.TOPIC_BEHIND if behind else TopicDriftKind.TOPIC_AHEAD
        text = ("a CCB change was not published" if behind
                else "the topic carries a change CCB does not stand by")
        return [Drift(kind, entity_id, f"the topic's latest version is {message.version}, "
                      f"CCB's is {want.version}: {text}", "version", want.version,
                      message.version)]
    pairs: list[tuple[str, object, object]] = [
        ("saStatus", want.sa_status, message.sa_status),
        ("externalAccountId", want.external_account_id, message.external_account_id),
        ("usType", want.us_type, message.us_type),
        ("startDate", want.start_date, message.start_date),
        ("endDate", want.end_date, message.end_date),
        ("timeZone", want.time_zone, message.time_zone),
        ("mainContactId", want.main_contact_id, message.main_contact_id),
        ("division", want.division, message.division),
        ("masterExternalId", want.master_external_id, message.master_external_id),
    ]
    drifts = [Drift(TopicDriftKind.TOPIC_DIFFERS, entity_id,
                    f"{path}: CCB {_show(ccb_value)}, topic {_show(topic_value)}", path,
                    _value(ccb_value), _value(topic_value))
              for path, ccb_value, topic_value in pairs if ccb_value != topic_value]
    drifts.extend(replace(drift, kind=TopicDriftKind.TOPIC_DIFFERS,
                          message=drift.message.replace(", MDM ", ", topic "))
                  for drift in _link_drifts(entity_id, want.sp_links, message.sp_links))
    return drifts
