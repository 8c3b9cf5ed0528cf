"""Reconcile and replay on a genuine Apache Kafka broker: a synchronized CCB + MDM pair built with
the production pipeline, every drift kind injected and found, repaired by a resend; an MDM store
rebuilt from the topic alone equals the live one row by row."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.cli import main
from sync.pipeline.local import LocalPipeline
from sync.pipeline.stores import open_mdm_store
from sync.reconcile.compare import DriftKind, TopicDriftKind
from sync.reconcile.mdm_replay import ReplayTargetNotEmptyError, replay_into_mdm
from sync.reconcile.report import ReconcileReport, RepairAction
from sync.reconcile.run import reconcile, repair
from sync.storage import mdm_schema as t
from sync.storage.mdm import MdmStore
from tests.integration.pipeline_support import (
    ADMIN,
    TODAY,
    run,
    synchronized_pipeline,
)

pytestmark = pytest.mark.kafka

STOP = dt.date(2025, 3, 14)


@pytest.fixture
async def pipeline(kafka_broker: Any, tmp_path: Path) -> AsyncIterator[LocalPipeline]:
    """A synchronized CCB + MDM pair on Kafka (unique topics), every request SYNCHRONIZED."""
    async with synchronized_pipeline(kafka_broker.url, tmp_path, "r") as pipeline:
        yield pipeline


async def reconcile_now(pipeline: LocalPipeline) -> ReconcileReport:
    return await reconcile(pipeline.outbox, pipeline.mdm, pipeline.bus,
                           pipeline.settings.topics.sync_requests, ADMIN)


# --- injecting drift into MDM -----------------------------------------------------------------

US_CHILDREN = (t.us_sp_links, t.us_usage_groups, t.us_factor_overrides)


def delete_us(mdm: MdmStore, external_id: str) -> None:
    with mdm.engine.begin() as connection:
        for table in (*US_CHILDREN, t.usage_subscriptions):
            connection.execute(delete(table).where(table.c.external_id == external_id))


def change_us(mdm: MdmStore, external_id: str, **values: Any) -> None:
    with mdm.engine.begin() as connection:
        connection.execute(update(t.usage_subscriptions).where(
            t.usage_subscriptions.c.external_id == external_id).values(**values))


def copy_us(mdm: MdmStore, external_id: str, new_id: str) -> None:
    with mdm.engine.begin() as connection:
        row = dict(connection.execute(select(t.usage_subscriptions).where(
            t.usage_subscriptions.c.external_id == external_id)).mappings().one())
        connection.execute(insert(t.usage_subscriptions).values({**row, "external_id": new_id}))


def drifts_of(report: ReconcileReport, entity_id: str) -> list[tuple[str, str | None]]:
    return [(drift.kind.value, drift.field) for drift in report.drifts
            if drift.entity_id == entity_id]


async def test_a_synchronized_pair_agrees(pipeline: LocalPipeline) -> None:
    report = await reconcile_now(pipeline)
    assert report.agree, report.summary()
    assert report.ccb_expected == report.topic_expected == report.mdm_held == 6
    assert report.replay.problems == []
    assert report.bounds.total >= report.replay.records > 0


async def test_every_drift_kind_is_found_and_a_repair_settles_it(
        pipeline: LocalPipeline) -> None:
    known = {us.external_id for us in pipeline.mdm.list_us()}
    delete_us(pipeline.mdm, "SA-TN02-E")
    change_us(pipeline.mdm, "SA-TN02-G", division="WEST")
    change_us(pipeline.mdm, "SA-LL-3E", status="INACTIVE")
    copy_us(pipeline.mdm, "SA-LL-3G", "SA-GHOST-1")
    # A CCB change the relay never published: the tenant stops, the landlord's start is new.
    run(pipeline, RequestStop(account_id="A-TN-01", sa_ids=("SA-TN01-E",), stop_date=STOP))
    [landlord] = [sa.id for sa in pipeline.outbox.store.read(
        lambda view: view.sas_of_account("A-LL-01")) if sa.id not in known]

    report = await reconcile_now(pipeline)
    assert not report.agree
    assert drifts_of(report, "SA-TN02-E") == [("MISSING_IN_MDM", None)]
    assert drifts_of(report, "SA-TN02-G") == [("FIELD_DIFFERENCE", "division")]
    [division] = [d for d in report.drifts if d.entity_id == "SA-TN02-G"]
    assert (division.ccb_value, division.mdm_value) == ("MAIN", "WEST")
    assert drifts_of(report, "SA-LL-3E") == [("STATUS_MISMATCH", "status")]
    assert drifts_of(report, "SA-GHOST-1") == [("EXTRA_IN_MDM", None)]
    tenant = drifts_of(report, "SA-TN01-E")
    assert ("STALE_VERSION", "lastAppliedVersion") in tenant
    assert ("FIELD_DIFFERENCE", "endDate") in tenant
    assert ("FIELD_DIFFERENCE", "spLinks[0].stop") in tenant
    assert ("TOPIC_BEHIND", "version") in tenant
    assert drifts_of(report, landlord) == [("MISSING_IN_MDM", None),
                                           ("NOT_PUBLISHED", "version")]
    counts = report.counts()
    assert counts[TopicDriftKind.NOT_PUBLISHED.value] == 1
    assert counts[DriftKind.EXTRA_IN_MDM.value] == 1
    entities = {entity.entity_id: entity for entity in report.entities()}
    assert entities["SA-GHOST-1"].repair is RepairAction.MANUAL
    assert "PENDING" in (entities["SA-TN01-E"].sync_request or "")

    outcome = repair(pipeline.outbox, report, pipeline.clock.now())
    assert sorted(item.entity_id for item in outcome.requeued) == sorted(
        ["SA-TN02-E", "SA-TN02-G", "SA-LL-3E", "SA-TN01-E", landlord])
    assert outcome.manual == ("SA-GHOST-1",)
    await pipeline.settle()

    again = await reconcile_now(pipeline)
    assert [(d.kind, d.entity_id) for d in again.drifts] == [
        (DriftKind.EXTRA_IN_MDM, "SA-GHOST-1")]
    delete_us(pipeline.mdm, "SA-GHOST-1")
    assert (await reconcile_now(pipeline)).agree


async def test_reconcile_cli_exit_codes_json_and_repair(
        pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = pipeline.settings
    for name, value in [("TOPIC_SYNC_REQUESTS", settings.topics.sync_requests),
                        ("TOPIC_ACKNOWLEDGEMENTS", settings.topics.acknowledgements),
                        ("TOPIC_DEAD_LETTERS", settings.topics.dead_letters)]:
        monkeypatch.setenv(f"C2M_SYNC_{name}", value)
    argv = ["--broker", settings.broker_url, "--ccb-db-url", settings.ccb_db_url,
            "--mdm-db-url", settings.mdm_db_url, "--business-date", TODAY.isoformat(),
            "reconcile"]

    assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agree"] is True

    change_us(pipeline.mdm, "SA-TN01-G", end_date=STOP)
    assert await asyncio.to_thread(main, [*argv, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["counts"]["FIELD_DIFFERENCE"] == 1
    assert sum(document["counts"].values()) == 1
    assert document["drifts"] == [{
        "kind": "FIELD_DIFFERENCE", "entity_id": "SA-TN01-G", "field": "endDate",
        "ccb": None, "mdm": STOP.isoformat(), "message": "endDate: CCB (none), MDM 2025-03-14"}]
    assert document["entities"][0]["repair"] == "RESEND"
    assert document["repair"] is None

    assert await asyncio.to_thread(main, [*argv, "--repair"]) == 1
    out = capsys.readouterr().out
    assert "SA-TN01-G" in out
    assert "FIELD_DIFFERENCE" in out
    assert "repair: 1 sync request queued" in out
    await pipeline.settle()
    assert await asyncio.to_thread(main, argv) == 0
    assert "CCB, the topic and MDM agree" in capsys.readouterr().out


# --- replay: rebuilding MDM from the topic alone ----------------------------------------------

COMPARED_TABLES = (t.usage_subscriptions, t.us_sp_links, t.us_usage_groups,
                   t.us_factor_overrides, t.service_points, t.measuring_components, t.contacts,
                   t.consumed_positions)


def rows(store: MdmStore) -> dict[str, list[dict[str, Any]]]:
    found = {}
    with store.engine.connect() as connection:
        for table in COMPARED_TABLES:
            key = list(table.primary_key.columns)
            found[table.name] = [dict(row) for row in connection.execute(
                select(table).order_by(*key)).mappings()]
    return found


async def test_replay_rebuilds_an_mdm_store_equal_to_the_live_one(
        pipeline: LocalPipeline, tmp_path: Path) -> None:
    """Steps 1.4, 4.7 and 5.4: the tenant stop, the landlord's reverted start and the cancel
    of the stop, rebuilt from the topic through the worker's processing."""
    run(pipeline, RequestStop(account_id="A-TN-01", sa_ids=("SA-TN01-E",), stop_date=STOP))
    await pipeline.settle()
    run(pipeline, RequestStop(account_id="A-TN-02", sa_ids=("SA-TN02-G",), stop_date=STOP))
    await pipeline.settle()
    run(pipeline, CancelPendingStop(sa_id="SA-TN01-E"))
    await pipeline.settle()

    rebuilt = open_mdm_store(f"sqlite:///{tmp_path / 'rebuilt.db'}", ADMIN)
    try:
        report = await replay_into_mdm(pipeline.bus, pipeline.settings.topics.sync_requests,
                                       rebuilt, pipeline.clock)
        live, copy = rows(pipeline.mdm), rows(rebuilt)
        for table in COMPARED_TABLES:
            assert copy[table.name] == live[table.name], table.name
        assert len(live["mdm_usage_subscriptions"]) == 8  # 6 loaded + 2 landlord starts
        assert report.records == report.bounds.total
        assert report.rows["mdm_usage_subscriptions"] == 8
        # Every consumed record has its answer kept for the next worker to publish.
        assert len(rebuilt.unpublished(10_000)) == report.records

        with pytest.raises(ReplayTargetNotEmptyError, match="mdm_usage_subscriptions: 8 rows"):
            await replay_into_mdm(pipeline.bus, pipeline.settings.topics.sync_requests,
                                  rebuilt, pipeline.clock)
    finally:
        rebuilt.dispose()


async def test_replay_cli_rebuilds_and_refuses_a_store_that_is_not_empty(
        pipeline: LocalPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("C2M_SYNC_TOPIC_SYNC_REQUESTS", pipeline.settings.topics.sync_requests)
    target = f"sqlite:///{tmp_path / 'dr.db'}"
    argv = ["--broker", pipeline.settings.broker_url, "replay", "--mdm-db", target]
    assert await asyncio.to_thread(main, [*argv, "--json", "--mark-answers-published"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["rows"]["mdm_usage_subscriptions"] == 6
    assert document["answers_marked_published"] == document["records"]
    assert document["verdicts"]["applied"] >= 6

    assert await asyncio.to_thread(main, argv) == 2
    assert "is not empty" in capsys.readouterr().err
