"""Long runs as resources: ``Prefer: respond-async`` answers 202 once the run has begun, the
run is followed by id to its report, a second run of the kind is refused while one goes, a
batch run or a resend is stopped between two units of work by an operator or by the server's
shutdown. (Reconciliations: ``test_operations.py``.)"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, make_url, text

from bench.saact_data import populate
from sync.api.app import create_app
from sync.api.runs import MAX_WAIT_S, Preferences, preferences
from sync.api.runtime import Runtime
from sync.batches import JobContext, load_jobs
from sync.config.settings import Settings
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.run_locks import run_locks_for
from tests.api.support import AUTH, TODAY, client_for, post, reject, send_pending

ASYNC = {**AUTH, "Prefer": "respond-async"}
DUE = 3_000  # bench SAs due today: at 10 a chunk, a run of a few seconds
CHUNK = 10
MOVED = text("SELECT count(*) FROM ccb_service_agreements WHERE id LIKE 'BSA-%' "
             "AND status IN ('20', '40')")


@pytest.fixture
def due(runtime: Runtime, settings: Settings) -> Settings:
    """The sample building plus ``DUE`` ready pending SAs due today, one account each."""
    engine = create_engine(settings.ccb_db_url)
    populate(engine, DUE, 0, TODAY)
    engine.dispose()
    return settings


def moved(settings: Settings) -> int:
    engine = create_engine(settings.ccb_db_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(MOVED).scalar_one())
    finally:
        engine.dispose()


async def until_ended(client: httpx.AsyncClient, location: str,
                      timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await client.get(location)).json()
        if run["state"] != "RUNNING":
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"{location} still running after {timeout_s} s")


async def started(client: httpx.AsyncClient, body: dict[str, Any] | None = None,
                  ) -> httpx.Response:
    response = await client.post("/api/batches/SAACT/runs", json=body or {"chunk_size": CHUNK},
                                 headers=ASYNC)
    assert response.status_code == 202, response.text
    return response


async def test_step_5_9_respond_async_answers_202_then_the_run_is_followed_to_its_report(
        client: httpx.AsyncClient, due: Settings) -> None:
    response = await started(client)

    run = response.json()
    location = response.headers["Location"]
    assert location == f"/api/batches/SAACT/runs/{run['id']}"
    assert response.headers["Preference-Applied"] == "respond-async"
    assert (run["code"], run["state"], run["report"], run["stop_requested"]) == (
        "SAACT", "RUNNING", None, False)
    assert run["total"] >= DUE
    assert run["done"] < run["total"]

    ended = await until_ended(client, location)
    assert ended["state"] == "FINISHED"
    assert ended["done"] == ended["total"] == ended["report"]["examined"]
    assert ended["report"]["stopped"] is False
    assert ended["finished_at"] is not None
    assert ended["error"] is None
    assert moved(due) == DUE
    listed = (await client.get("/api/batches/SAACT/runs")).json()
    assert [item["id"] for item in listed] == [run["id"]]
    assert listed[0] == ended


async def test_step_5_9_a_second_run_is_refused_while_one_goes_and_stop_ends_it_between_units(
        client: httpx.AsyncClient, due: Settings) -> None:
    first = (await started(client)).json()

    second = await client.post("/api/batches/SAACT/runs", json={}, headers=ASYNC)
    assert second.status_code == 409
    detail = second.json()["detail"]
    assert detail.startswith(f"{first['id']} of SAACT, started ")
    assert detail.endswith(f"is still running on this server: wait for it, or stop it with "
                           f"POST /api/batches/SAACT/runs/{first['id']}/stop")
    other_code = await client.post("/api/batches/TD-SSFTL/runs", json={}, headers=AUTH)
    assert other_code.status_code == 200  # another job runs all the same

    stopping = await client.post(f"/api/batches/SAACT/runs/{first['id']}/stop", headers=AUTH)
    assert stopping.status_code == 202
    assert stopping.json()["stop_requested"] is True
    ended = await until_ended(client, f"/api/batches/SAACT/runs/{first['id']}")

    assert ended["state"] == "STOPPED"
    report = ended["report"]
    assert report["stopped"] is True
    assert report["examined"] % CHUNK == 0
    assert report["examined"] < DUE
    assert moved(due) == report["examined"]  # everything counted applied, nothing else
    again = await client.post(f"/api/batches/SAACT/runs/{first['id']}/stop", headers=AUTH)
    assert again.status_code == 409
    assert f"batch run {first['id']} has already ended (STOPPED)" in again.json()["detail"]

    rest = await post(client, "/api/batches/SAACT/runs", {"chunk_size": 500})
    assert rest.status_code == 200
    assert (rest.json()["examined"], rest.json()["stopped"]) == (DUE - report["examined"],
                                                                 False)
    assert moved(due) == DUE


@pytest.mark.parametrize("headers", [ASYNC, AUTH], ids=["respond-async", "plain"])
async def test_step_5_9_a_run_of_the_job_in_another_process_refuses_the_request_with_409(
        client: httpx.AsyncClient, due: Settings, headers: dict[str, str]) -> None:
    """The job's lock is the database's, not the server's: a CLI run (here the test's own
    process holding the lock through another engine) keeps the API's run out."""
    engine = create_engine(due.ccb_db_url)
    try:
        with run_locks_for(engine).hold("SAACT"):
            refused = await client.post("/api/batches/SAACT/runs", json={"chunk_size": CHUNK},
                                        headers=headers)
            assert refused.status_code == 409, refused.text
            detail = refused.json()["detail"]
            assert detail.startswith(f"batch SAACT is already running (pid {os.getpid()} on ")
            assert detail.endswith("nothing was run: wait for it to end, or stop it")
            assert moved(due) == 0
            [failed] = (await client.get("/api/batches/SAACT/runs")).json()
            assert failed["state"] == "FAILED"
            assert failed["error"] == detail
        answered = await post(client, "/api/batches/SAACT/runs", {"chunk_size": 500})
        assert answered.status_code == 200
        assert answered.json()["examined"] == moved(due) == DUE
    finally:
        engine.dispose()


async def test_step_5_9_a_run_whose_lock_goes_ends_failed_saying_why_and_how_far_it_got(
        client: httpx.AsyncClient, due: Settings) -> None:
    """The run's lock file removed while it goes: the run stops before its next chunk and
    ends FAILED naming the loss and how many SAs it had done, all of them applied."""
    first = (await started(client)).json()
    lock_file = Path(f"{make_url(due.ccb_db_url).database}-batch-SAACT")
    lock_file.unlink()
    ended = await until_ended(client, f"/api/batches/SAACT/runs/{first['id']}")

    assert (ended["state"], ended["report"]) == ("FAILED", None)
    done = moved(due)
    assert ended["error"] == (
        f"batch SAACT lost its run lock (its lock file {lock_file} was removed while the run "
        f"held it) and stopped after {done} items, so that no second run works beside it: "
        "what it did is committed; run it again for the rest")
    assert done % CHUNK == 0
    assert done < DUE
    rest = await post(client, "/api/batches/SAACT/runs", {"chunk_size": 500})
    assert rest.json()["examined"] == DUE - done
    assert moved(due) == DUE


async def test_a_refused_input_is_still_a_422_under_respond_async(
        client: httpx.AsyncClient) -> None:
    response = await client.post("/api/batches/FACOMPL/runs", json={}, headers=ASYNC)
    assert response.status_code == 422
    assert "FACOMPL needs --file" in response.json()["detail"]
    [failed] = (await client.get("/api/batches/FACOMPL/runs")).json()
    assert (failed["state"], failed["report"]) == ("FAILED", None)
    assert "FACOMPL needs --file" in failed["error"]


async def test_an_upload_to_a_job_that_reads_none_is_refused_before_a_run_begins(
        client: httpx.AsyncClient) -> None:
    upload = {"format": "csv", "content": "fa_id,completed_at,read_value\n"}
    response = await client.post("/api/batches/SAACT/runs", json={"upload": upload},
                                 headers=ASYNC)
    assert response.status_code == 422
    assert response.json()["detail"] == "batch SAACT takes no --file (only FACOMPL, STOPUPL)"
    assert (await client.get("/api/batches/SAACT/runs")).json() == []


async def test_a_run_that_ends_within_the_wait_is_answered_with_its_report(
        client: httpx.AsyncClient) -> None:
    # The tenant's stop: SAACT on its date finds its four SAs waiting for fieldwork.
    await post(client, "/api/commands/request-stop", {
        "account_id": "A-TN-01", "stop_date": "2025-03-03", "premise_id": "PR-4410-1",
        "user": "csr1"})
    response = await client.post("/api/batches/SAACT/runs", json={},
                                 headers={**AUTH, "Prefer": "respond-async, wait=60"})
    assert response.status_code == 200
    report = response.json()
    assert (report["code"], report["todos_raised"], report["stopped"]) == ("SAACT", 4, False)
    [run] = (await client.get("/api/batches/SAACT/runs")).json()
    assert response.headers["Content-Location"] == f"/api/batches/SAACT/runs/{run['id']}"
    assert run["report"] == report


async def test_unknown_runs_and_codes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/batches/SAACT/runs/BR-99")).json()["detail"] \
        == "batch run 'BR-99' not found (run_id)"
    assert (await client.get("/api/batches/NOPE/runs")).status_code == 404
    assert (await client.post("/api/batches/SAACT/runs/BR-99/stop",
                              headers=AUTH)).status_code == 404


async def test_step_5_9_the_server_shutdown_stops_a_run_between_units_before_closing_stores(
        app: FastAPI, due: Settings) -> None:
    async with app.router.lifespan_context(app), client_for(app) as client:
        run = (await started(client)).json()
    # The shutdown returned: the run had ended, stopped by it, not failed on closed stores.
    [kept] = app.state.batch_runs.newest_first("SAACT")
    assert kept.id == run["id"]
    assert (kept.state.value, kept.result.stopped) == ("STOPPED", True)
    assert moved(due) == kept.result.examined < DUE


def _in_error(runtime: Runtime) -> int:
    """Every bench SA through SAACT, sent, and rejected by MDM: its request in ERROR."""
    report = load_jobs().run("SAACT", JobContext(
        admin=runtime.admin, clock=runtime.clock, store=runtime.ccb,
        queries=SqlBatchQueries(runtime.ccb.engine)))
    assert report.changed >= DUE
    now = runtime.clock.now()
    reject(runtime.outbox, send_pending(runtime.outbox, now), now)
    return runtime.outbox.counts()["ERROR"]


async def test_step_1_4_a_resend_of_every_error_under_respond_async_stops_between_chunks(
        client: httpx.AsyncClient, runtime: Runtime, due: Settings) -> None:
    in_error = _in_error(runtime)
    path = "/api/sync-requests/resend-errors"

    response = await client.post(path, headers=ASYNC)

    assert response.status_code == 202, response.text
    run = response.json()
    location = response.headers["Location"]
    assert location == f"{path}/{run['id']}"
    assert (run["state"], run["total"], run["report"]) == ("RUNNING", in_error, None)
    refused = await client.post(path, headers=ASYNC)
    assert refused.status_code == 409
    assert refused.json()["detail"].endswith(f"stop it with POST {location}/stop")
    stopping = await client.post(f"{location}/stop", headers=AUTH)
    assert (stopping.status_code, stopping.json()["stop_requested"]) == (202, True)
    ended = await until_ended(client, location)

    assert ended["state"] == "STOPPED"
    report = ended["report"]
    assert report["stopped"] is True
    assert report["examined"] % 500 == 0  # whole chunks of 500, one transaction each
    assert 0 < report["examined"] < in_error
    assert len(report["resent"]) == report["examined"]
    assert runtime.outbox.counts()["ERROR"] == in_error - report["examined"]
    rest = await post(client, path)
    assert rest.headers["Content-Location"].startswith(f"{path}/RS-")
    assert (rest.json()["examined"], rest.json()["stopped"]) == (
        in_error - report["examined"], False)
    assert runtime.outbox.counts()["ERROR"] == 0
    assert (await client.get(f"{path}/RS-99")).json()["detail"] == \
        "resend 'RS-99' not found (run_id)"


@pytest.mark.parametrize(("header", "expected"), [
    (None, Preferences(False, 0.0)),
    ("respond-async", Preferences(True, 0.0)),
    ("Respond-Async; foo=bar, wait=5", Preferences(True, 5.0)),
    ('wait="7", respond-async', Preferences(True, 7.0)),
    ("respond-async, wait=soon", Preferences(True, 0.0)),
    ("respond-async, wait=99999", Preferences(True, MAX_WAIT_S)),
    ("return=minimal", Preferences(False, 0.0)),
])
def test_prefer_header(header: str | None, expected: Preferences) -> None:
    assert preferences(header) == expected


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as client:
        yield client


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    return create_app(runtime)
