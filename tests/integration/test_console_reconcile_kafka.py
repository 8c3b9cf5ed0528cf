"""The console's reconciliation on a genuine Apache Kafka broker, over HTTP: a run started from
the page is followed to its report (the page reloading itself meanwhile), the repair queues
fresh requests from that report, and a long replay is stopped from the page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.api.app import create_app
from sync.api.runtime import AccessPolicy, Runtime
from sync.ccb.sync_requests import SyncRequestState
from sync.pipeline.local import LocalPipeline
from sync.transport.bus import Message
from tests.api.support import AUTH, TOKEN, client_for
from tests.browser.support import csrf_of, flashes
from tests.integration.pipeline_support import ADMIN, TODAY, synchronized_pipeline

pytestmark = pytest.mark.kafka


@pytest.fixture
async def pipeline(kafka_broker: Any, tmp_path: Path) -> AsyncIterator[LocalPipeline]:
    """The sample building synchronized on Kafka (topics of its own)."""
    async with synchronized_pipeline(kafka_broker.url, tmp_path, "console") as pipeline:
        yield pipeline


@pytest.fixture
async def console(pipeline: LocalPipeline) -> AsyncIterator[httpx.AsyncClient]:
    """The server over the pipeline's stores and topics, an operator signed in."""
    runtime = Runtime(pipeline.settings.model_copy(update={"business_date": TODAY}), ADMIN,
                      AccessPolicy(tokens=frozenset({TOKEN}), open_reads=True))
    try:
        async with client_for(create_app(runtime)) as client:
            signed_in = await client.post("/signin", data={"user": "integ1", "token": TOKEN,
                                                           "next": "/reconcile"})
            assert signed_in.status_code == 303, signed_in.text
            yield client
    finally:
        runtime.close()


async def started(console: httpx.AsyncClient) -> str:
    """Run reconciliation: the page sends the browser to the run it started."""
    response = await console.get("/reconcile?run=1")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/reconcile\?id=RC-\d+", location), location
    return location


async def until_ended(console: httpx.AsyncClient, location: str) -> str:
    for _ in range(1200):  # bounded: 120 s
        page = (await console.get(location)).text
        if 'data-state="RUNNING"' not in page:
            return page
        await asyncio.sleep(0.1)
    raise AssertionError(f"{location} still running after 120 s")


async def test_a_reconciliation_from_the_console_is_followed_to_its_report_and_repaired(
        console: httpx.AsyncClient, pipeline: LocalPipeline) -> None:
    """SPEC.md section 7 (reconcile, ``--repair``) from the console; no process step."""
    # The tenant's stop is made in CCB and not relayed: CCB is ahead of the topic and MDM.
    stopped = await console.post("/api/commands/request-stop", headers=AUTH, json={
        "account_id": "A-TN-01", "stop_date": "2025-03-10", "premise_id": "PR-4410-1",
        "user": "csr1"})
    assert stopped.status_code == 200, stopped.text
    location = await started(console)
    again = await console.get("/reconcile?run=1")  # one at a time: the page follows it
    if again.status_code == 303:
        assert again.headers["location"] in (location, "/reconcile?id=RC-2")

    page = await until_ended(console, location)

    assert 'id="report" data-run="RC-1" data-agree="no"' in page
    assert '<meta http-equiv="refresh"' not in page
    drifted = set(re.findall(r'<tr data-entity="([^"]+)" data-kind=', page))
    assert {"SA-TN01-E", "SA-TN01-G"} <= drifted
    resend = re.findall(r"<tr><td>([^<]+)</td><td>[^<]*</td><td>RESEND</td>", page)
    assert set(resend) == drifted  # every drifted SA is still in CCB: a resend repairs it
    repaired = await console.post("/reconcile/repair", follow_redirects=True, data={
        "csrf": csrf_of(page), "id": "RC-1", "back": location})
    assert flashes(repaired.text, "ok") == [f"repair: {len(resend)} sync requests queued"]
    assert str(repaired.url).endswith(location)
    assert drifted <= {request.entity_id for request in
                       pipeline.outbox.find(state=SyncRequestState.PENDING)}
    listed = (await console.get("/reconcile")).text
    assert 'data-run="RC-1" data-state="FINISHED"' in listed
    missing = await console.get("/reconcile?id=RC-99")
    assert missing.status_code == 404
    assert "no reconciliation RC-99 on this server (a restart forgets them)" in missing.text


async def test_a_long_replay_is_followed_then_stopped_from_the_console(
        console: httpx.AsyncClient, pipeline: LocalPipeline) -> None:
    [request] = pipeline.outbox.find(entity_id="SA-TN01-E")
    await pipeline.bus.publish_batch(pipeline.settings.topics.sync_requests, [
        Message(key=request.key.encode("utf-8"), value=request.payload)] * 200_000)

    location = await started(console)
    going = (await console.get(location)).text
    stopping = await console.post(f"{location.replace('?id=', '/')}/stop",
                                  follow_redirects=True,
                                  data={"csrf": csrf_of(going), "back": location})
    page = await until_ended(console, location)

    assert 'data-state="RUNNING"' in going, "the replay ended before it could be stopped"
    assert '<meta http-equiv="refresh" content="2">' in going
    assert 'id="stop-reconcile"' in going
    run_id = location.rsplit("=", 1)[1]
    assert flashes(stopping.text, "ok") == [f"{run_id} stops within a moment, during its "
                                            "replay"]
    assert f'data-run="{run_id}" data-state="STOPPED"' in page
    [error] = re.findall(r'id="run-error">([^<]*)<', page)
    assert error.startswith("stopped on request during the replay, after ")
    assert error.endswith("records; nothing was compared or repaired")
    assert 'id="report"' not in page
    assert '<meta http-equiv="refresh"' not in page
