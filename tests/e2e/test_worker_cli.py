"""`c2m-sync worker all` as an operator runs it against Apache Kafka: the faust MDM agent and the
CCB relay/acknowledgement consumer in one process, driven by CCB commands from the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]


class Operator:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir

    def run(self, *argv: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "sync.cli", *argv, "--json"],
                              cwd=self.workdir, env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def wait_until(self, what: str, condition: Any, timeout_s: float = 120) -> Any:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = condition()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


@pytest.fixture
def operator(kafka_broker: Any, tmp_path: Path) -> Operator:
    suffix = uuid.uuid4().hex[:8]
    env = {**os.environ,
           "C2M_SYNC_BROKER_URL": str(kafka_broker.url),
           "C2M_SYNC_CCB_DB_URL": f"sqlite:///{tmp_path / 'ccb.db'}",
           "C2M_SYNC_MDM_DB_URL": f"sqlite:///{tmp_path / 'mdm.db'}",
           "C2M_SYNC_BUSINESS_DATE": "2025-03-03",
           "C2M_SYNC_TOPIC_SYNC_REQUESTS": f"e2e-sync-{suffix}",
           "C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS": f"e2e-acks-{suffix}",
           "C2M_SYNC_TOPIC_DEAD_LETTERS": f"e2e-dlq-{suffix}",
           "PYTHONPATH": str(ROOT)}
    return Operator(env, tmp_path)


@pytest.mark.timeout(400)
def test_worker_all_synchronizes_cli_commands_and_stops_on_sigterm(operator: Operator) -> None:
    operator.run("ccb", "load", str(ROOT / "examples" / "premise-landlord.yaml"))
    log_path = operator.workdir / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sync.cli", "worker", "all", "--engine", "faust"],
            cwd=operator.workdir, env=operator.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def synchronized() -> bool:
            requests = operator.run("ccb", "sync", "list", "--limit", "1000")
            return bool(requests) and all(r["state"] == "SYNCHRONIZED" for r in requests)

        operator.wait_until("the loaded entities to synchronize", synchronized, 180)
        operator.run("ccb", "request-stop", "A-TN-01", "--sa", "SA-TN01-E",
                     "--stop-date", "2025-03-14")
        operator.wait_until("the stop and the landlord start to synchronize", synchronized)

        tenant = operator.run("mdm", "us", "show", "SA-TN01-E")
        assert tenant["status"] == "ACTIVE"
        assert tenant["end_date"] == "2025-03-14"
        landlord = [us for us in operator.run("mdm", "us", "list")
                    if us["external_account_id"] == "A-LL-01"
                    and us["start_date"] == "2025-03-14"]
        assert [us["status"] for us in landlord] == ["PENDING"]
        assert [link["sp_id"] for link in landlord[0]["sp_links"]] == ["SP-4410-1E"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    output = log_path.read_text("utf-8", errors="replace")
    assert code == 0, output[-3000:]
    assert "worker stopped" in output


def run_worker_until(operator: Operator, condition: Any, log_path: Path) -> str:
    """Run `worker all` on the in-process bus until ``condition`` holds, then SIGTERM it."""
    env = {**operator.env, "C2M_SYNC_BROKER_URL": "memory://"}
    with log_path.open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "sync.cli", "worker", "all"],
                                  cwd=operator.workdir, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        operator.wait_until("the worker to synchronize", condition, 120)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
    output = log_path.read_text("utf-8", errors="replace")
    assert code == 0, output[-3000:]
    return output


@pytest.mark.timeout(300)
def test_worker_all_on_the_in_process_bus_can_be_stopped_and_run_again(tmp_path: Path) -> None:
    """Each run of the in-process bus starts with empty topics while both databases remember
    earlier runs: a second run must still synchronize what changed in between."""
    env = {**os.environ, "C2M_SYNC_CCB_DB_URL": f"sqlite:///{tmp_path / 'ccb.db'}",
           "C2M_SYNC_MDM_DB_URL": f"sqlite:///{tmp_path / 'mdm.db'}",
           "C2M_SYNC_BUSINESS_DATE": "2025-03-03", "PYTHONPATH": str(ROOT)}
    operator = Operator(env, tmp_path)
    operator.run("ccb", "load", str(ROOT / "examples" / "premise-landlord.yaml"))

    def all_synchronized() -> bool:
        requests = operator.run("ccb", "sync", "list", "--limit", "1000")
        return bool(requests) and all(r["state"] == "SYNCHRONIZED" for r in requests)

    log_path = tmp_path / "worker.log"
    run_worker_until(operator, all_synchronized, log_path)
    operator.run("ccb", "request-stop", "A-TN-01", "--sa", "SA-TN01-E",
                 "--stop-date", "2025-03-14")
    run_worker_until(operator, all_synchronized, log_path)
    tenant = operator.run("mdm", "us", "show", "SA-TN01-E")
    assert tenant["end_date"] == "2025-03-14"
