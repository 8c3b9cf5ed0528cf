"""Reconciliation against the live stores and topic: gather the three sides, compare, repair.

:func:`reconcile` reads, in this order, the sync topic (a bounded replay, end offsets frozen at
its start), CCB (every SA whose SA type maps to a US type, as the live mapping would send it
now, with the version its newest non-discarded sync request carries) and MDM (every US). The
order keeps a busy system's false alarms on the safe side: a CCB change made during the
replay shows as "topic behind", which is true when it is read.

:func:`repair` queues a fresh sync request (``SqlOutbox.requeue``) for every entity a resend
can repair; once the pipeline has carried them, a second reconcile finds no drift for them.

Both work on any bus, the in-process one included (within one process: the demo calls them).
"""

from __future__ import annotations

import datetime as dt

from sync.ccb.changes import SA
from sync.ccb.model import SaStatus
from sync.ccb.sync_requests import SyncRequest
from sync.config.admin import AdminConfig
from sync.mapping.snapshots import SnapshotError
from sync.mdm.ports import MdmStorePort
from sync.reconcile.compare import (
    ExpectedUsageSubscription,
    expected_from_ccb,
    expected_from_message,
    snapshot_versions,
)
from sync.reconcile.replay import ProgressCallback, rebuild_latest
from sync.reconcile.report import (
    ReconcileReport,
    RepairAction,
    RepairOutcome,
    RequeuedEntity,
    three_way,
)
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox import SqlOutbox
from sync.transport.bus import Bus


def ccb_expectations(outbox: SqlOutbox, admin: AdminConfig
                     ) -> tuple[list[ExpectedUsageSubscription], dict[str, str]]:
    """What CCB expects MDM to hold, and each SA's newest sync request as text."""
    requests = outbox.find(entity_type=SA)
    versions = snapshot_versions(requests)

    def read(view: SqlCcbView) -> list[ExpectedUsageSubscription]:
        sa_ids = [sa.id for sa in view.sas_with_status(*SaStatus)]
        return expected_from_ccb(view, admin, sa_ids, versions)

    newest: dict[str, SyncRequest] = {}
    for request in requests:
        newest[request.entity_id] = request
    notes = {entity_id: f"{request.id} {request.state.value} version {request.version}"
             for entity_id, request in newest.items()}
    return outbox.store.read(read), notes


async def reconcile(outbox: SqlOutbox, mdm: MdmStorePort, bus: Bus, topic: str,
                    admin: AdminConfig, *, since: dt.datetime | None = None,
                    progress: ProgressCallback | None = None) -> ReconcileReport:
    """Replay ``topic`` (from ``since``, else from the beginning) and compare CCB, the topic's
    latest message per SA and MDM. With ``since`` an SA without a message in the replayed
    range is not reported as unpublished (its message may be older)."""
    bounds, latest = await rebuild_latest(bus, topic, since=since, progress=progress)
    ccb, notes = ccb_expectations(outbox, admin)
    topic_expected = [found for found in map(expected_from_message,
                                              latest.sa_messages().values())
                      if found is not None]
    drifts, ccb_count, topic_count, mdm_count = three_way(
        ccb, topic_expected, mdm.list_us(), complete=since is None)
    return ReconcileReport(topic=topic, since=since, bounds=bounds, replay=latest,
                           ccb_expected=ccb_count, topic_expected=topic_count,
                           mdm_held=mdm_count, drifts=tuple(drifts), sync_requests=notes)


def repair(outbox: SqlOutbox, report: ReconcileReport, now: dt.datetime) -> RepairOutcome:
    """Queue a fresh sync request for every entity of ``report`` a resend repairs; list those
    that need manual action. Sets and returns ``report.repair``."""
    requeued: list[RequeuedEntity] = []
    manual: list[str] = []
    failed: list[tuple[str, str]] = []
    for entity in report.entities():
        if entity.repair is RepairAction.MANUAL:
            manual.append(entity.entity_id)
            continue
        try:
            request = outbox.requeue(SA, entity.entity_id, now)
        except SnapshotError as error:  # CCB data that cannot be sent: say so, go on
            failed.append((entity.entity_id, str(error)))
            continue
        requeued.append(RequeuedEntity(entity.entity_id, request.id, request.version))
    report.repair = RepairOutcome(tuple(requeued), tuple(manual), tuple(failed))
    return report.repair
