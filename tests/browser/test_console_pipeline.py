"""The console in headless Chromium over the real pipeline: ``c2m-sync worker all`` (the faust
MDM agent, the relay and the acknowledgement consumer) on Apache Kafka in a subprocess, the
console served by uvicorn in this process, both on the same SQLite files loaded with
``examples/premise-landlord.yaml``. Screenshots are written to ``var/screenshots/``
(``make screenshots``: to ``docs/screenshots/``, the README's and the console guide's)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from sync.api.runtime import Runtime
from sync.ccb.changes import Changes
from sync.ccb.model import ServicePoint, ToDoStatus
from sync.ccb.ports import CcbView, IdSource
from sync.config.settings import Settings, TopicNames
from sync.storage.ccb import SqlCcbStore
from tests.browser.support import (
    BUSINESS_DATE,
    ROOT,
    SCREENSHOTS,
    TOKEN,
    load_example,
    served,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.browser]


@dataclass
class Stack:
    base_url: str
    runtime: Runtime
    settings: Settings
    worker_log: Path

    def all_synchronized(self) -> bool:
        counts = self.runtime.outbox.counts()
        return (counts["SYNCHRONIZED"] > 0 and counts["PENDING"] == counts["SENT"]
                == counts["ERROR"] == 0)

    def wait_until_synchronized(self, what: str, timeout_s: float = 180) -> None:
        try:
            wait_until(what, self.all_synchronized, timeout_s)
        except AssertionError as error:
            tail = self.worker_log.read_text("utf-8", errors="replace")[-3000:]
            raise AssertionError(f"{error}\nworker log:\n{tail}") from None


@pytest.fixture
def stack(kafka_broker: Any, tmp_path: Path) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        ccb_db_url=f"sqlite:///{tmp_path / 'ccb.db'}",
        mdm_db_url=f"sqlite:///{tmp_path / 'mdm.db'}",
        broker_url=str(kafka_broker.url), business_date=BUSINESS_DATE,
        topics=TopicNames(sync_requests=f"console-sync-{suffix}",
                          acknowledgements=f"console-acks-{suffix}",
                          dead_letters=f"console-dlq-{suffix}"))
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "C2M_SYNC_BROKER_URL": settings.broker_url,
           "C2M_SYNC_CCB_DB_URL": settings.ccb_db_url,
           "C2M_SYNC_MDM_DB_URL": settings.mdm_db_url,
           "C2M_SYNC_BUSINESS_DATE": BUSINESS_DATE.isoformat(),
           "C2M_SYNC_TOPIC_SYNC_REQUESTS": settings.topics.sync_requests,
           "C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS": settings.topics.acknowledgements,
           "C2M_SYNC_TOPIC_DEAD_LETTERS": settings.topics.dead_letters}
    with served(settings) as (base_url, runtime):
        load_example(runtime)
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "sync.cli", "worker", "all", "--engine", "faust"],
                cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            stack = Stack(base_url, runtime, settings, log_path)
            stack.wait_until_synchronized("the sample building to synchronize")
            yield stack
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(timeout=10)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, stack: Stack, user: str) -> None:
    page.goto(f"{stack.base_url}/signin")
    page.get_by_label("User").fill(user)
    page.get_by_label("Access token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signed-in-user")).to_have_text(user)


def reload_until(page: Page, url: str, what: str, condition: Any, timeout_s: float = 120
                 ) -> None:
    """Reload ``url`` until ``condition(page)`` holds (the monitor is a plain page)."""
    def check() -> bool:
        page.goto(url)
        return bool(condition(page))

    wait_until(what, check, timeout_s, every_s=1.0)


def state_of(page: Page, section: str, entity_id: str) -> str | None:
    """The state of the newest request of ``entity_id`` shown in ``section``."""
    rows = page.locator(f'{section} tr[data-entity="{entity_id}"]')
    return rows.first.get_attribute("data-state") if rows.count() else None


def count_of(page: Page, state: str) -> int:
    return int(page.locator(f'#counts [data-state="{state}"]').get_attribute("data-count")
               or "-1")


@pytest.mark.timeout(480)
def test_steps_1_1_to_1_5_and_4_7_a_stop_in_the_console_reverts_the_unit_and_synchronizes(
        stack: Stack, page: Page) -> None:
    """Step 1.0 search, 1.1 request stop, 1.3 alert, 4.7 landlord reversion in the premise
    tree, 1.4-1.5 both requests synchronized with MDM, and a reconciliation that agrees."""
    sign_in(page, stack, "csr1")
    page.goto(f"{stack.base_url}/search")
    page.get_by_label("Search by").select_option("name")
    page.get_by_label("Query").fill("okafor")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Account A-TN-01").click()
    expect(page).to_have_url(f"{stack.base_url}/accounts/A-TN-01")

    form = page.locator("#request-stop")
    form.locator('input[name="sa"][value="SA-TN01-E"]').check()
    form.get_by_label("Stop date").fill("2025-03-14")
    form.get_by_role("button", name="Request stop").click()
    expect(page.locator(".flash.ok")).to_contain_text("SA SA-TN01-E request stop: 2025-03-14")
    expect(page.locator("#alerts")).to_contain_text("Pending stop: SA SA-TN01-E (E-RES) on "
                                                    "2025-03-14")
    unit = page.locator('#sas ~ .tree [data-unit="PR-4410-1"]')
    landlord_row = unit.locator('tr[data-landlord="yes"][data-status="10"]')
    expect(landlord_row).to_have_count(1)
    landlord_sa = landlord_row.get_attribute("data-sa")
    assert landlord_sa is not None
    expect(landlord_row).to_contain_text("A-LL-01")
    expect(landlord_row).to_contain_text("reverted to landlord")
    expect(unit.locator(".upcoming")).to_contain_text(
        f"2025-03-14: reverts to the landlord (SA {landlord_sa}, E-RES)")
    screenshot(page, "account-view")

    page.goto(f"{stack.base_url}/premises/PR-4410")
    expect(page.locator('[data-unit="PR-4410-3"]')).to_have_attribute("data-occupancy",
                                                                      "landlord")
    expect(page.locator("p.landlord")).to_contain_text("BRENNAN,MARGARET")
    screenshot(page, "premise-tree")

    def both_synchronized(page: Page) -> bool:
        return (state_of(page, "#recent", "SA-TN01-E") == "SYNCHRONIZED"
                and state_of(page, "#recent", landlord_sa) == "SYNCHRONIZED"
                and page.locator("#all-clear").count() == 1)

    reload_until(page, f"{stack.base_url}/sync", "the tenant stop and the landlord start to "
                 "synchronize", both_synchronized)
    tenant_row = page.locator('#recent tr[data-entity="SA-TN01-E"]').first
    expect(tenant_row).to_contain_text("ACTIVE v")  # a pending stop is still active in MDM
    expect(page.locator(f'#recent tr[data-entity="{landlord_sa}"]').first).to_contain_text(
        "PENDING v")
    screenshot(page, "sync-monitor")
    us = stack.runtime.mdm.get_us(landlord_sa)
    assert us is not None
    assert us.external_account_id == "A-LL-01"
    assert us.start_date.isoformat() == "2025-03-14"

    page.goto(f"{stack.base_url}/reconcile")
    page.get_by_role("button", name="Run reconciliation").click()
    expect(page.locator("#report")).to_have_attribute("data-agree", "yes", timeout=60_000)
    expect(page.locator("#summary")).to_contain_text("CCB, the topic and MDM agree")
    screenshot(page, "reconciliation")


def set_measuring_components(components: list[dict[str, str]]) -> Any:
    def unit(view: CcbView, _ids: IdSource) -> Changes:
        sp = view.service_point("SP-4410-2E")
        assert sp is not None
        changes = Changes()
        changes.put_service_point(ServicePoint.model_validate({
            **sp.model_dump(), "version": sp.version + 1,
            "measuring_components": components}))
        return changes

    return unit


@pytest.mark.timeout(480)
def test_step_1_5_an_mdm_validation_error_shows_in_the_sync_monitor_and_a_resend_clears_it(
        stack: Stack, page: Page) -> None:
    """The electric SP of unit 2 loses its measuring component: MDM rejects the SA
    (D2-VALUSMC), the monitor shows the message and a To Do is raised (6.1-6.3). The data is
    corrected by a database fix that bypasses the outbox, so nothing queues the SA again: the
    operator's resend sends the SA's current data and MDM accepts it; the To Do completes."""
    stack.runtime.ccb.execute(set_measuring_components([]))
    sign_in(page, stack, "integ1")
    sync_url = f"{stack.base_url}/sync"
    reload_until(page, sync_url, "MDM to reject SA-TN02-E",
                 lambda page: state_of(page, "#attention", "SA-TN02-E") == "ERROR")
    error_row = page.locator('#attention tr[data-entity="SA-TN02-E"][data-state="ERROR"]')
    expect(error_row.locator(".validation")).to_contain_text("D2-VALUSMC")
    request_id = error_row.get_attribute("data-request")
    assert request_id is not None
    assert count_of(page, "ERROR") == 1
    screenshot(page, "sync-monitor-error")

    page.goto(f"{stack.base_url}/todos?role=SYNC")
    entry = page.locator(".todo", has_text=f"sync request {request_id}")
    expect(entry).to_contain_text("D2-VALUSMC")
    entry.get_by_role("button", name="Take").click()
    expect(page.locator(".flash.ok")).to_contain_text("is being worked by integ1")
    entry = page.locator(".todo", has_text=f"sync request {request_id}")
    entry.get_by_label("log comment").fill("MC-771202-KWH restored on SP-4410-2E")
    entry.get_by_role("button", name="Add log").click()
    expect(page.locator(".flash.ok")).to_contain_text("log entry added by integ1")
    todo_id = page.locator(".todo", has_text=f"sync request {request_id}").get_attribute(
        "data-todo")
    assert todo_id is not None
    screenshot(page, "todo-list")

    fix = SqlCcbStore(stack.settings.ccb_db_url, clock=stack.runtime.clock)
    try:
        fix.execute(set_measuring_components([{"id": "MC-771202-KWH", "mc_class": "kWh"}]))
    finally:
        fix.dispose()
    assert stack.runtime.outbox.counts()["PENDING"] == 0  # the fix queued nothing

    page.goto(sync_url)
    page.locator(f'#attention tr[data-request="{request_id}"]').get_by_role(
        "button", name="Resend").click()
    expect(page.locator(".flash.ok")).to_contain_text(
        re.compile(rf"sync request {request_id} \(SA:SA-TN02-E\) queued again as version \d+"))
    reload_until(page, sync_url, "the resent request to synchronize",
                 lambda page: page.locator("#all-clear").count() == 1
                 and state_of(page, "#recent", "SA-TN02-E") == "SYNCHRONIZED")
    assert count_of(page, "ERROR") == 0
    screenshot(page, "sync-monitor-clean")

    resent = stack.runtime.outbox.get(request_id)
    assert resent is not None
    us = stack.runtime.mdm.get_us("SA-TN02-E")
    assert us is not None
    assert us.last_applied_version == resent.version
    entry_after = stack.runtime.ccb.read(lambda view: view.todo(todo_id))
    assert entry_after is not None
    assert entry_after.status is ToDoStatus.COMPLETE
    page.goto(f"{stack.base_url}/todos?status=all&role=SYNC")
    expect(page.locator(f'[data-todo="{todo_id}"]')).to_have_attribute("data-status",
                                                                       "complete")
