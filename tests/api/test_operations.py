"""Sync requests, usage subscriptions, batch runs, reconciliation runs, health and metrics over
HTTP; the MDM side is filled by the real pipeline on the in-process bus."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sync.api.app import create_app
from sync.api.runtime import Runtime
from sync.clock import FixedClock
from sync.config.settings import Settings
from sync.pipeline.local import LocalPipeline
from sync.transport.bus import Message, bus_of
from tests.api.support import (
    ADMIN,
    AUTH,
    TODAY,
    client_for,
    fail_sync_request,
    post,
    problem,
)

STOP = {"account_id": "A-TN-01", "stop_date": "2025-03-03", "premise_id": "PR-4410-1",
        "user": "csr1"}


async def synchronize(settings: Settings) -> None:
    """Relay, apply in MDM and acknowledge until the stores agree (on the runtime's bus)."""
    pipeline = LocalPipeline(settings, ADMIN, FixedClock(TODAY))
    await pipeline.start()
    try:
        await pipeline.settle()
    finally:
        await pipeline.stop()


@pytest.fixture
async def synchronized(client: httpx.AsyncClient, settings: Settings) -> httpx.AsyncClient:
    await synchronize(settings)
    return client


# --- sync requests ----------------------------------------------------------------------------


async def test_sync_requests_newest_first_with_filters(shared_client: httpx.AsyncClient) -> None:
    everything = (await shared_client.get("/api/sync-requests")).json()
    assert len(everything) == 10  # 6 SAs and 4 persons of the sample building
    assert [r["seq"] for r in everything] == sorted((r["seq"] for r in everything), reverse=True)
    assert {r["state"] for r in everything} == {"PENDING"}
    persons = (await shared_client.get("/api/sync-requests",
                                       params={"entity_type": "PERSON"})).json()
    assert sorted(r["entity_id"] for r in persons) == ["P-LL-01", "P-TN-01", "P-TN-02",
                                                       "P-TN-03"]
    one = (await shared_client.get("/api/sync-requests",
                                   params={"entity_id": "SA-TN01-E"})).json()
    assert [r["key"] for r in one] == ["SA:SA-TN01-E"]
    assert len((await shared_client.get("/api/sync-requests", params={"limit": 3})).json()) == 3
    assert (await shared_client.get("/api/sync-requests", params={"state": "ERROR"})).json() == []


@pytest.mark.parametrize(("params", "field"), [
    ({"state": "LOST"}, "query.state"), ({"limit": 0}, "query.limit"),
    ({"entity_type": "PREMISE"}, "query.entity_type")])
async def test_sync_request_filters_are_checked(shared_client: httpx.AsyncClient,
                                                params: dict[str, Any], field: str) -> None:
    response = await shared_client.get("/api/sync-requests", params=params)
    assert problem(response, 422, "validation")["errors"][0]["field"] == field


async def test_one_sync_request_with_its_snapshot(shared_client: httpx.AsyncClient) -> None:
    [listed] = (await shared_client.get("/api/sync-requests",
                                        params={"entity_id": "SA-TN01-E"})).json()
    document = (await shared_client.get(f"/api/sync-requests/{listed['id']}")).json()
    assert document["entity_id"] == "SA-TN01-E"
    assert document["snapshot"]["externalId"] == "SA-TN01-E"
    problem(await shared_client.get("/api/sync-requests/SR-404"), 404, "not-found")


async def test_step_1_4_resend_queues_a_request_in_error_again(client: httpx.AsyncClient,
                                                               runtime: Runtime) -> None:
    failed = fail_sync_request(runtime, "SA-TN01-E")
    [listed] = (await client.get("/api/sync-requests", params={"state": "ERROR"})).json()
    assert (listed["id"], listed["errors"][0]["code"]) == (failed.id, "D2-VALUSMC")
    response = await post(client, f"/api/sync-requests/{failed.id}/resend")
    assert response.status_code == 200, response.text
    resent = response.json()
    assert (resent["id"], resent["state"], resent["errors"]) == (failed.id, "PENDING", [])
    assert resent["version"] > failed.version
    again = await post(client, f"/api/sync-requests/{failed.id}/resend")
    assert "only a request in ERROR can be resent" in problem(again, 422,
                                                              "invalid-command")["detail"]
    problem(await post(client, "/api/sync-requests/SR-404/resend"), 404, "not-found")


async def test_step_1_4_resend_errors_queues_every_request_in_error_again(client: httpx.AsyncClient,
                                                                  runtime: Runtime) -> None:
    failed = fail_sync_request(runtime, "SA-TN01-E")
    path = "/api/sync-requests/resend-errors"
    other = await post(client, f"{path}?code=D2-USSPDTVAL")
    assert other.status_code == 200, other.text
    assert other.json() == {"examined": 1, "resent": [], "carried_by_pending": 0, "failed": [],
                            "stopped": False}
    response = await post(client, f"{path}?code=D2-VALUSMC&entity_type=SA")
    assert response.status_code == 200, response.text
    assert response.json() == {"examined": 1, "resent": [failed.id], "carried_by_pending": 0,
                               "failed": [], "stopped": False}
    resent = (await client.get(f"/api/sync-requests/{failed.id}")).json()
    assert (resent["state"], resent["errors"]) == ("PENDING", [])
    assert (await post(client, path)).json()["examined"] == 0
    problem(await post(client, f"{path}?entity_type=PREMISE"), 422, "validation")


# --- MDM --------------------------------------------------------------------------------------


async def test_step_1_5_usage_subscriptions_once_synchronized(
        synchronized: httpx.AsyncClient) -> None:
    us = (await synchronized.get("/api/usage-subscriptions/SA-TN01-E")).json()
    assert (us["external_id"], us["external_account_id"], us["status"]) == (
        "SA-TN01-E", "A-TN-01", "ACTIVE")
    assert [link["sp_id"] for link in us["sp_links"]] == ["SP-4410-1E"]
    listed = (await synchronized.get("/api/usage-subscriptions",
                                     params={"status": "ACTIVE"})).json()
    assert len(listed) == 6
    at_sp = (await synchronized.get("/api/usage-subscriptions",
                                    params={"sp_id": "SP-4410-3G"})).json()
    assert [item["external_id"] for item in at_sp] == ["SA-LL-3G"]
    problem(await synchronized.get("/api/usage-subscriptions/SA-404"), 404, "not-found")
    response = await synchronized.get("/api/usage-subscriptions", params={"status": "ASLEEP"})
    problem(response, 422, "validation")


# --- reconciliation ---------------------------------------------------------------------------


async def test_a_reconciliation_that_agrees_is_kept_by_id(
        synchronized: httpx.AsyncClient) -> None:
    response = await post(synchronized, "/api/reconciliations", {})
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["id"], report["agree"], report["checked"]) == (
        "RC-1", True, {"ccb": 6, "topic": 6, "mdm": 6})
    assert report["drifts"] == []
    assert report["replay"]["records"] >= 10
    kept = (await synchronized.get("/api/reconciliations/RC-1")).json()
    assert kept == report
    listed = (await synchronized.get("/api/reconciliations")).json()
    assert [(item["id"], item["agree"]) for item in listed] == [("RC-1", True)]
    problem(await synchronized.get("/api/reconciliations/RC-9"), 404, "not-found")


async def test_reconciliation_finds_drift_and_repairs_by_resending(
        synchronized: httpx.AsyncClient, settings: Settings) -> None:
    await post(synchronized, "/api/commands/request-stop", {**STOP, "stop_date": "2025-03-10"})
    report = (await post(synchronized, "/api/reconciliations", {"repair": True})).json()
    assert report["agree"] is False
    drifted = {entity["entity_id"] for entity in report["entities"]}
    assert {"SA-TN01-E", "SA-TN01-G"} <= drifted
    assert {item["entity_id"] for item in report["repair"]["requeued"]} == drifted
    await synchronize(settings)
    again = (await post(synchronized, "/api/reconciliations", {})).json()
    assert (again["id"], again["agree"]) == ("RC-2", True)


async def test_a_long_reconciliation_under_respond_async_is_followed_to_its_report(
        synchronized: httpx.AsyncClient, settings: Settings, runtime: Runtime) -> None:
    """A topic of 40,000 records: 202 once the replay has begun, a second one refused while
    it goes, then the report under the same id."""
    await _copies_on_the_topic(settings, runtime, 40_000)

    response = await synchronized.post("/api/reconciliations", json={},
                                       headers={**AUTH, "Prefer": "respond-async"})

    assert response.status_code == 202, response.text
    going = response.json()
    location = response.headers["Location"]
    assert location == f"/api/reconciliations/{going['id']}"
    assert (going["state"], going["error"]) == ("RUNNING", None)
    assert going["total"] >= 40_000
    refused = await synchronized.post("/api/reconciliations", json={}, headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["detail"].endswith(f"is still running on this server: follow it "
                                             f"at {location}")
    [listed] = (await synchronized.get("/api/reconciliations")).json()
    assert (listed["id"], listed["agree"], listed["summary"]) == (going["id"], None, None)
    report = await until_ended(synchronized, location)
    assert (report["state"], report["agree"]) == ("FINISHED", True)
    assert report["replay"]["records"] >= 40_010
    assert report["replay"]["superseded"] >= 40_000
    assert report["checked"] == {"ccb": 6, "topic": 6, "mdm": 6}


async def _copies_on_the_topic(settings: Settings, runtime: Runtime, copies: int) -> None:
    """The sync topic made long: ``copies`` more records of one SA's snapshot."""
    [request] = runtime.outbox.find(entity_id="SA-TN01-E")
    bus = bus_of(settings)
    await bus.start()
    try:
        await bus.publish_batch(settings.topics.sync_requests, [
            Message(key=request.key.encode("utf-8"), value=request.payload)] * copies)
    finally:
        await bus.stop()


async def until_ended(client: httpx.AsyncClient, location: str) -> dict[str, Any]:
    for _ in range(1200):  # bounded: 120 s
        run: dict[str, Any] = (await client.get(location)).json()
        if run["state"] != "RUNNING":
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} still running after 120 s")


async def test_a_reconciliation_is_stopped_during_its_replay_and_the_next_one_runs(
        synchronized: httpx.AsyncClient, settings: Settings, runtime: Runtime) -> None:
    """A topic of 200,000 records: the stop lands within a fetch, the run ends STOPPED
    saying how far it got (no report: nothing was compared), and frees the way."""
    await _copies_on_the_topic(settings, runtime, 200_000)
    response = await synchronized.post("/api/reconciliations", json={},
                                       headers={**AUTH, "Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    location = response.headers["Location"]

    stopping = await synchronized.post(f"{location}/stop", headers=AUTH)

    assert stopping.status_code == 202, stopping.text
    ended = await until_ended(synchronized, location)
    assert ended["state"] == "STOPPED", ended
    assert ended["error"].startswith("stopped on request during the replay, after ")
    assert ended["error"].endswith(f" of {ended['total']} records; nothing was compared or "
                                   "repaired")
    assert ended["done"] < ended["total"]
    assert "agree" not in ended  # no report
    [listed] = (await synchronized.get("/api/reconciliations")).json()
    assert (listed["state"], listed["agree"], listed["summary"]) == (
        "STOPPED", None, ended["error"])
    again = await synchronized.post(f"{location}/stop", headers=AUTH)
    assert again.status_code == 409
    assert again.json()["detail"] == f"reconciliation {ended['id']} has already ended (STOPPED)"
    assert (await synchronized.post("/api/reconciliations/RC-9/stop",
                                    headers=AUTH)).status_code == 404

    after = await post(synchronized, "/api/reconciliations", {})
    assert after.status_code == 201, after.text
    assert (after.json()["state"], after.json()["agree"]) == ("FINISHED", True)


async def test_the_server_shutdown_stops_a_reconciliation_during_its_replay(
        app: FastAPI, settings: Settings, runtime: Runtime) -> None:
    await synchronize(settings)
    await _copies_on_the_topic(settings, runtime, 200_000)
    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await client.post("/api/reconciliations", json={},
                                     headers={**AUTH, "Prefer": "respond-async"})
        assert response.status_code == 202, response.text
    # The shutdown returned: the reconciliation had ended, stopped by it.
    [kept] = app.state.reconciliations.newest_first()
    assert (kept.state.value, kept.result) == ("STOPPED", None)
    assert kept.done < kept.total


async def test_reconciliation_refuses_a_bad_start_time(shared_client: httpx.AsyncClient) -> None:
    response = await post(shared_client, "/api/reconciliations", {"since": "yesterday"})
    assert problem(response, 422, "validation")["errors"][0]["field"] == "body.since"


async def test_reconciliation_without_a_sync_topic_is_unavailable(
        shared_client: httpx.AsyncClient) -> None:
    response = await post(shared_client, "/api/reconciliations")
    assert "does not exist" in problem(response, 503, "unavailable")["detail"]


# --- batches ----------------------------------------------------------------------------------


async def test_batch_list(shared_client: httpx.AsyncClient) -> None:
    codes = [job["code"] for job in (await shared_client.get("/api/batches")).json()]
    assert codes[:7] == ["SAACT", "PSASPM", "TD-SSFTL", "FANRMRCO", "FACOMPL", "TD-CCCB",
                         "STOPUPL"]
    assert {"SYNC-RELAY", "SYNC-TIMEOUT"} <= set(codes)


async def test_steps_5_9_6_0_saact_raises_a_todo_then_facompl_completes_and_saact_stops(
        client: httpx.AsyncClient) -> None:
    stopped = (await post(client, "/api/commands/request-stop", STOP)).json()
    first = (await post(client, "/api/batches/SAACT/runs", {})).json()
    assert (first["code"], first["business_date"], first["changed"], first["todos_raised"]) \
        == ("SAACT", "2025-03-03", 0, 4)
    rows = "\n".join(f"{fa_id},2025-03-03T08:30:00,{30000 + n}"
                     for n, fa_id in enumerate(stopped["field_activities"]))
    upload = {"format": "csv", "content": f"fa_id,completed_at,read_value\n{rows}\n"
                                          "FA-999,2025-03-03T08:30:00,1\n"}
    completed = (await post(client, "/api/batches/FACOMPL/runs", {"upload": upload})).json()
    assert completed["changed"] == 4
    assert completed["errors"] == [{"entity": "row", "entity_id": "5",
                                    "reason": "FA 'FA-999' not found (fa_id)"}]
    second = (await post(client, "/api/batches/SAACT/runs", {"chunk_size": 1})).json()
    assert (second["changed"], second["todos_raised"]) == (4, 0)
    assert (await client.get("/api/sas/SA-TN01-E")).json()["sa"]["status"] == "40"


async def test_steps_1_1_to_1_9_a_stop_upload_requests_each_good_row(
        client: httpx.AsyncClient) -> None:
    upload = {"format": "csv", "content": "account_id,stop_date,sa_ids,premise_id\n"
                                          "A-TN-02,2025-03-14,,PR-4410-2\n"
                                          "A-TN-01,2025-03-14,SA-NOPE,\n"}
    run = (await post(client, "/api/batches/STOPUPL/runs", {"upload": upload})).json()
    assert (run["code"], run["changed"]) == ("STOPUPL", 1)
    assert [(e["entity_id"], "SA-NOPE" in e["reason"]) for e in run["errors"]] == [("2", True)]
    for sa_id in ("SA-TN02-E", "SA-TN02-G"):
        sa = (await client.get(f"/api/sas/{sa_id}")).json()["sa"]
        assert (sa["status"], sa["end_date"]) == ("30", "2025-03-14")
    assert (await client.get("/api/sas/SA-TN01-E")).json()["sa"]["status"] == "20"


async def test_a_batch_runs_on_the_business_date_given(client: httpx.AsyncClient) -> None:
    await post(client, "/api/commands/request-stop", {**STOP, "stop_date": "2025-03-10"})
    before = (await post(client, "/api/batches/SAACT/runs", {})).json()
    assert before["nothing_to_do"] is True
    on_date = (await post(client, "/api/batches/SAACT/runs",
                          {"business_date": "2025-03-10"})).json()
    assert (on_date["business_date"], on_date["examined"]) == ("2025-03-10", 4)


@pytest.mark.parametrize(("path", "body", "status", "text"), [
    ("/api/batches/NOPE/runs", {}, 404, "batch 'NOPE' not found (code)"),
    ("/api/batches/FACOMPL/runs", {}, 422, "FACOMPL needs --file"),
    ("/api/batches/SYNC-RELAY/runs", {}, 422, "SYNC-RELAY needs a broker"),
    ("/api/batches/SAACT/runs", {"business_date": "2025-02-29"}, 422, "body.business_date"),
    ("/api/batches/SAACT/runs", {"chunk_size": 0}, 422, "body.chunk_size"),
    ("/api/batches/FACOMPL/runs", {"upload": {"format": "xml", "content": ""}}, 422,
     "body.upload.format"),
    ("/api/batches/SAACT/runs", {"upload": {"format": "csv", "content": "fa_id\n"}}, 422,
     "batch SAACT takes no --file (only FACOMPL, STOPUPL)"),
])
async def test_batch_runs_refuse_bad_input(shared_client: httpx.AsyncClient, path: str,
                                           body: dict[str, Any], status: int,
                                           text: str) -> None:
    response = await post(shared_client, path, body)
    assert response.status_code == status, response.text
    assert text in response.json()["detail"]


# --- health and metrics -----------------------------------------------------------------------


async def test_health_when_both_stores_answer(shared_client: httpx.AsyncClient) -> None:
    response = await shared_client.get("/health")
    assert (response.status_code, response.json()) == (200, {
        "status": "ok", "ccb": {"reachable": True, "detail": None},
        "mdm": {"reachable": True, "detail": None}})


async def test_health_is_503_when_a_store_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(update={
        "mdm_db_url": "postgresql://nobody@127.0.0.1:1/mdm?connect_timeout=2"})
    runtime = Runtime(broken, ADMIN)
    try:
        async with client_for(create_app(runtime)) as client:
            response = await client.get("/health")
    finally:
        runtime.close()
    document = response.json()
    assert (response.status_code, document["status"]) == (503, "unavailable")
    assert document["ccb"]["reachable"] is True
    assert document["mdm"]["reachable"] is False
    assert document["mdm"]["detail"]


async def test_metrics_count_requests_by_route_and_sync_requests_by_state(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await client.get("/api/sas/SA-TN01-E")
    await client.get("/api/sas/SA-404")
    await client.get("/api/sas/SA-405")
    await client.get("/no/such/page")
    fail_sync_request(runtime, "SA-TN01-E")
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert ('c2m_sync_http_requests_total{method="GET",route="/api/sas/{sa_id}",status="200"} 1'
            in lines)
    assert ('c2m_sync_http_requests_total{method="GET",route="/api/sas/{sa_id}",status="404"} 2'
            in lines)
    assert 'c2m_sync_http_requests_total{method="GET",route="unmatched",status="404"} 1' in lines
    counts = runtime.outbox.counts()
    for state, count in counts.items():
        assert f'c2m_sync_sync_requests{{state="{state}"}} {count}' in lines
    assert counts["ERROR"] == 1
    assert "# TYPE c2m_sync_sync_requests gauge" in lines

