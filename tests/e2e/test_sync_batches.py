"""`c2m-sync batch run SYNC-RELAY | SYNC-TIMEOUT` as a scheduler runs them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main

ROOT = Path(__file__).parents[2]


@pytest.fixture
def ccb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("C2M_SYNC_CCB_DB_URL", f"sqlite:///{tmp_path / 'ccb.db'}")
    monkeypatch.setenv("C2M_SYNC_TOPIC_SYNC_REQUESTS", f"batch-sync-{suffix}")
    monkeypatch.setenv("C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS", f"batch-acks-{suffix}")
    monkeypatch.setenv("C2M_SYNC_TOPIC_DEAD_LETTERS", f"batch-dlq-{suffix}")
    assert main(["--business-date", "2025-03-03", "ccb", "load",
                 str(ROOT / "examples" / "premise-landlord.yaml")]) == 0
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_sync_relay_publishes_every_pending_request_then_has_nothing_to_do(
        ccb: Path, kafka_broker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    broker = ["--broker", str(kafka_broker.url), "--business-date", "2025-03-03"]
    pending = run_json(capsys, "ccb", "sync", "list", "--state", "PENDING", "--limit", "1000")
    report = run_json(capsys, *broker, "batch", "run", "SYNC-RELAY")
    assert report["examined"] == len(pending) > 0
    assert report["changed"] == len(pending)
    sent = run_json(capsys, "ccb", "sync", "list", "--state", "SENT", "--limit", "1000")
    assert {r["id"] for r in sent} == {r["id"] for r in pending}
    assert all(r["partition"] is not None and r["offset"] is not None for r in sent)
    again = run_json(capsys, *broker, "batch", "run", "SYNC-RELAY")
    assert again["changed"] == 0
    assert again["nothing_to_do"] is True

    # Nobody answers (no MDM worker): a day later SYNC-TIMEOUT turns them into errors, once.
    later = ["--business-date", "2025-03-04"]
    timed_out = run_json(capsys, *later, "batch", "run", "SYNC-TIMEOUT")
    assert timed_out["changed"] == timed_out["todos_raised"] == len(pending)
    errors = run_json(capsys, "ccb", "sync", "list", "--state", "ERROR", "--limit", "1000")
    assert all(r["errors"][0]["code"] == "SYNC-TIMEOUT" for r in errors)
    assert run_json(capsys, *later, "batch", "run", "SYNC-TIMEOUT")["nothing_to_do"] is True

    # The broker is back: every timed-out request is queued again in one command, once.
    other_code = run_json(capsys, "ccb", "sync", "resend-errors", "--code", "D2-VALUSMC")
    assert (other_code["examined"], other_code["resent"]) == (len(errors), [])
    capsys.readouterr()
    assert main([*later, "ccb", "sync", "resend-errors", "--code", "SYNC-TIMEOUT"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{len(errors)} of {len(errors)} requests in ERROR queued again")
    assert run_json(capsys, "ccb", "sync", "list", "--state", "ERROR") == []
    requeued = run_json(capsys, "ccb", "sync", "list", "--state", "PENDING", "--limit", "1000")
    assert {r["id"] for r in requeued} == {r["id"] for r in errors}
    nothing = run_json(capsys, "ccb", "sync", "resend-errors")
    assert (nothing["examined"], nothing["resent"], nothing["failed"]) == (0, [], [])


def test_sync_relay_refuses_the_in_process_bus(ccb: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--broker", "memory://", "batch", "run", "SYNC-RELAY"]) != 0
    assert "needs a broker that outlives this command" in capsys.readouterr().err
    pending = run_json(capsys, "ccb", "sync", "list", "--state", "PENDING")
    assert pending  # nothing was marked sent
