"""A reconciliation's result: the three-way drifts (CCB against MDM, CCB against the sync topic),
grouped per entity, with what a repair can do about each, as one stable JSON document.

Pure: the inputs are values (what CCB expects, what the topic's latest messages ask for, what
MDM holds); :mod:`sync.reconcile.run` gathers them.

Repair. Every drift of an SA that CCB has is repaired the same way: CCB sends the SA's current
snapshot again with a new version (``SqlOutbox.requeue``), which MDM applies over whatever it
holds and which the topic keeps as the SA's latest message. A US in MDM (or a message on the
topic) for an SA that CCB does not have, or whose SA type maps to no US type, cannot be
repaired by a resend: there is nothing to send. Those need manual action in MDM.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sync.mdm.model import UsageSubscription
from sync.reconcile.compare import (
    Drift,
    DriftKind,
    ExpectedUsageSubscription,
    TopicDriftKind,
    compare,
    compare_topic,
)
from sync.reconcile.replay import LatestSnapshots, ReplayBounds

ALL_KINDS: tuple[DriftKind | TopicDriftKind, ...] = (*DriftKind, *TopicDriftKind)
# Drifts about a US or message with no SA in CCB to send again.
MANUAL_KINDS = frozenset({DriftKind.EXTRA_IN_MDM, TopicDriftKind.NOT_IN_CCB})


class RepairAction(StrEnum):
    RESEND = "RESEND"  # CCB sends the SA's current snapshot again (a new version)
    MANUAL = "MANUAL"  # nothing in CCB to send: fix MDM by hand


@dataclass(frozen=True)
class EntityDrift:
    """Every drift of one SA / US, and what a repair does about it."""

    entity_id: str
    drifts: tuple[Drift, ...]
    sync_request: str | None = None  # the SA's newest sync request, e.g. "SR-7 SENT version 3"

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(drift.kind.value for drift in self.drifts))

    @property
    def repair(self) -> RepairAction:
        manual = all(drift.kind in MANUAL_KINDS for drift in self.drifts)
        return RepairAction.MANUAL if manual else RepairAction.RESEND

    def to_dict(self) -> dict[str, Any]:
        return {"entity_id": self.entity_id, "kinds": list(self.kinds),
                "repair": self.repair.value, "sync_request": self.sync_request}


@dataclass(frozen=True)
class RequeuedEntity:
    entity_id: str
    sync_request_id: str
    version: int


@dataclass(frozen=True)
class RepairOutcome:
    """What ``--repair`` did: sync requests queued, entities left for manual action, and
    entities whose resend failed (with the reason)."""

    requeued: tuple[RequeuedEntity, ...] = ()
    manual: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        text = (f"repair: {len(self.requeued)} sync request"
                f"{'' if len(self.requeued) == 1 else 's'} queued")
        if self.manual:
            text += (f"; {len(self.manual)} need manual action in MDM (no SA in CCB to send): "
                     + ", ".join(self.manual))
        if self.failed:
            text += "; failed: " + "; ".join(f"{entity}: {reason}"
                                             for entity, reason in self.failed)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"requeued": [{"entity_id": item.entity_id,
                              "sync_request_id": item.sync_request_id,
                              "version": item.version} for item in self.requeued],
                "manual": list(self.manual),
                "failed": [{"entity_id": entity, "reason": reason}
                           for entity, reason in self.failed]}


@dataclass
class ReconcileReport:
    topic: str
    since: dt.datetime | None
    bounds: ReplayBounds
    replay: LatestSnapshots
    ccb_expected: int  # SAs CCB expects a US for
    topic_expected: int  # SAs whose latest message on the topic asks for a US
    mdm_held: int  # USs MDM holds
    drifts: tuple[Drift, ...]
    sync_requests: Mapping[str, str] = field(default_factory=dict)
    repair: RepairOutcome | None = None

    @property
    def agree(self) -> bool:
        return not self.drifts

    def counts(self) -> dict[str, int]:
        """Drifts per kind, every kind present (zero included)."""
        found = Counter(drift.kind.value for drift in self.drifts)
        return {kind.value: found[kind.value] for kind in ALL_KINDS}

    def entities(self) -> list[EntityDrift]:
        grouped: dict[str, list[Drift]] = {}
        for drift in self.drifts:
            grouped.setdefault(drift.entity_id, []).append(drift)
        return [EntityDrift(entity_id, tuple(drifts), self.sync_requests.get(entity_id))
                for entity_id, drifts in sorted(grouped.items())]

    def summary(self) -> str:
        entities = self.entities()
        what = (f"{self.ccb_expected} SAs in CCB, {self.topic_expected} on the topic, "
                f"{self.mdm_held} usage subscriptions in MDM")
        if self.agree:
            return f"CCB, the topic and MDM agree: {what}"
        manual = sum(1 for entity in entities if entity.repair is RepairAction.MANUAL)
        return (f"drift: {len(self.drifts)} difference{'' if len(self.drifts) == 1 else 's'} "
                f"on {len(entities)} entit{'y' if len(entities) == 1 else 'ies'} "
                f"({len(entities) - manual} repairable by a resend, {manual} manual): {what}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "agree": self.agree,
            "topic": self.topic,
            "since": None if self.since is None else self.since.isoformat(),
            "replay": {**self.bounds.to_dict(), **self.replay.to_dict()},
            "checked": {"ccb": self.ccb_expected, "topic": self.topic_expected,
                        "mdm": self.mdm_held},
            "counts": self.counts(),
            "entities": [entity.to_dict() for entity in self.entities()],
            "drifts": [drift.to_dict() for drift in self.drifts],
            "repair": None if self.repair is None else self.repair.to_dict(),
            "summary": self.summary(),
        }


def three_way(ccb: Iterable[ExpectedUsageSubscription],
              topic: Iterable[ExpectedUsageSubscription],
              mdm: Iterable[UsageSubscription], *, complete: bool = True
              ) -> tuple[list[Drift], int, int, int]:
    """The drifts of MDM against CCB and of the topic against CCB, by entity id (MDM's
    first), and how many entries each side had."""
    ccb_items, topic_items, mdm_items = list(ccb), list(topic), list(mdm)
    drifts = list(compare(ccb_items, mdm_items).drifts)
    drifts.extend(compare_topic(ccb_items, topic_items, complete=complete))
    drifts.sort(key=lambda drift: (drift.entity_id, drift.side != "MDM"))
    return drifts, len(ccb_items), len(topic_items), len(mdm_items)
