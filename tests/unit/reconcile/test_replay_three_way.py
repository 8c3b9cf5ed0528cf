"""The three-way comparison after a replay: CCB against the topic's latest message per SA
(one test per topic drift kind), and the report's counts, entities and repair actions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sync.ccb.sync_requests import SyncRequest, SyncRequestState
from sync.mdm.model import UsageSubscription, UsSpLink, UsStatus
from sync.reconcile.compare import (
    DriftKind,
    ExpectedUsageSubscription,
    TopicDriftKind,
    compare_topic,
    expected_from_message,
    snapshot_versions,
)
from sync.reconcile.replay import LatestSnapshots, ReplayBounds
from sync.reconcile.report import ALL_KINDS, ReconcileReport, RepairAction, three_way
from tests.unit.mapping.builders import sa_message

START = dt.date(2025, 3, 1)


def expected(sa_id: str = "SA-1", version: int = 1, **fields: Any) -> ExpectedUsageSubscription:
    found = expected_from_message(sa_message(sa_id, version=version, **fields))
    assert found is not None
    return found


def held(sa_id: str = "SA-1", version: int = 1) -> UsageSubscription:
    return UsageSubscription(
        external_id=sa_id, external_account_id="ACCT-1", us_type="E-RES-US",
        status=UsStatus.ACTIVE, start_date=START, end_date=None, main_contact_id="PER-1",
        division="MAIN", sp_links=(UsSpLink(sp_id="SP-1", start=START),),
        last_applied_version=version)


def test_ccb_and_topic_in_step_agree() -> None:
    assert compare_topic([expected(version=3)], [expected(version=3)]) == []


def test_not_published_when_the_topic_has_no_message_for_the_sa() -> None:
    [drift] = compare_topic([expected("SA-1", 2)], [])
    assert (drift.kind, drift.entity_id, drift.ccb_value) == (
        TopicDriftKind.NOT_PUBLISHED, "SA-1", 2)
    assert drift.side == "TOPIC"
    assert drift.to_dict()["topic"] is None


def test_a_replay_from_a_time_does_not_call_an_absent_sa_unpublished() -> None:
    assert compare_topic([expected("SA-1", 2)], [], complete=False) == []


def test_topic_behind_when_a_ccb_change_was_not_published() -> None:
    [drift] = compare_topic([expected(version=4, sa_status="30")], [expected(version=3)])
    assert drift.kind is TopicDriftKind.TOPIC_BEHIND
    assert (drift.field, drift.ccb_value, drift.mdm_value) == ("version", 4, 3)
    assert "a CCB change was not published" in drift.message


def test_topic_ahead_when_it_carries_a_version_ccb_does_not_stand_by() -> None:
    [drift] = compare_topic([expected(version=2)], [expected(version=3)])
    assert drift.kind is TopicDriftKind.TOPIC_AHEAD


def test_topic_differs_field_by_field_at_the_same_version() -> None:
    ccb = expected(version=3, end=dt.date(2025, 3, 14), sa_status="30")
    drifts = compare_topic([ccb], [expected(version=3)])
    assert {drift.kind for drift in drifts} == {TopicDriftKind.TOPIC_DIFFERS}
    assert {(d.field, d.ccb_value, d.mdm_value) for d in drifts} == {
        ("saStatus", "30", "20"), ("endDate", "2025-03-14", None),
        ("spLinks[0].stop", "2025-03-14", None)}
    link = next(d for d in drifts if d.field == "spLinks[0].stop")
    assert "topic (none)" in link.message


def test_not_in_ccb_when_the_topic_asks_for_a_us_ccb_does_not_expect() -> None:
    [drift] = compare_topic([], [expected("SA-GHOST", 5)])
    assert (drift.kind, drift.entity_id, drift.mdm_value) == (
        TopicDriftKind.NOT_IN_CCB, "SA-GHOST", 5)


def request(entity_id: str, version: int, state: SyncRequestState) -> SyncRequest:
    at = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
    return SyncRequest(id=f"SR-{version}", seq=version, entity_type="SA", entity_id=entity_id,
                       state=state, version=version, fingerprint="f", payload=b"{}",
                       created_at=at, updated_at=at)


def test_snapshot_versions_skip_discarded_requests() -> None:
    assert snapshot_versions([request("SA-1", 1, SyncRequestState.SYNCHRONIZED),
                              request("SA-1", 2, SyncRequestState.DISCARDED),
                              request("SA-2", 4, SyncRequestState.PENDING)]) == {
        "SA-1": 1, "SA-2": 4}


def report_of(ccb: list[ExpectedUsageSubscription], topic: list[ExpectedUsageSubscription],
              mdm: list[UsageSubscription]) -> ReconcileReport:
    drifts, ccb_count, topic_count, mdm_count = three_way(ccb, topic, mdm)
    return ReconcileReport(topic="sync", since=None, bounds=ReplayBounds("sync", {0: 0}, {0: 9}),
                           replay=LatestSnapshots(), ccb_expected=ccb_count,
                           topic_expected=topic_count, mdm_held=mdm_count,
                           drifts=tuple(drifts), sync_requests={"SA-2": "SR-7 PENDING version 2"})


def test_the_report_groups_drifts_per_entity_with_the_repair_each_needs() -> None:
    report = report_of(
        ccb=[expected("SA-1"), expected("SA-2", 2, sa_status="30")],
        topic=[expected("SA-1"), expected("SA-2", 1), expected("SA-9")],
        mdm=[held("SA-2", 1), held("SA-9")])
    assert not report.agree
    by_id = {entity.entity_id: entity for entity in report.entities()}
    assert by_id["SA-1"].kinds == (DriftKind.MISSING_IN_MDM.value,)
    assert by_id["SA-2"].kinds == ("STALE_VERSION", "TOPIC_BEHIND")
    assert by_id["SA-2"].sync_request == "SR-7 PENDING version 2"
    assert by_id["SA-9"].kinds == ("EXTRA_IN_MDM", "NOT_IN_CCB")
    assert [by_id[i].repair for i in ("SA-1", "SA-2", "SA-9")] == [
        RepairAction.RESEND, RepairAction.RESEND, RepairAction.MANUAL]
    counts = report.counts()
    assert list(counts) == [kind.value for kind in ALL_KINDS]
    assert (counts["MISSING_IN_MDM"], counts["TOPIC_BEHIND"], counts["NOT_PUBLISHED"]) == (
        1, 1, 0)
    document = report.to_dict()
    assert document["agree"] is False
    assert document["checked"] == {"ccb": 2, "topic": 3, "mdm": 2}
    assert document["entities"][2] == {"entity_id": "SA-9", "kinds": ["EXTRA_IN_MDM",
                                                                      "NOT_IN_CCB"],
                                       "repair": "MANUAL", "sync_request": None}
    assert report.summary().startswith("drift: 5 differences on 3 entities "
                                       "(2 repairable by a resend, 1 manual)")


def test_a_report_without_drift_agrees() -> None:
    report = report_of([expected("SA-1")], [expected("SA-1")], [held("SA-1")])
    assert report.agree
    assert set(report.counts().values()) == {0}
    assert report.summary() == ("CCB, the topic and MDM agree: 1 SAs in CCB, 1 on the topic, "
                                "1 usage subscriptions in MDM")
    assert replace(report, drifts=()).to_dict()["entities"] == []
