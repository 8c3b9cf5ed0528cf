"""`c2m-sync batch run SYNC-RELAY | SYNC-TIMEOUT | SYNC-PURGE` as a scheduler runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main
from sync.clock import FixedClock
from sync.config.admin import load_admin_config
from sync.mapping.messages import Acknowledgement, AckOutcome, EntityType
from sync.pipeline.stores import open_outbox

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


def test_sync_purge_keeps_the_days_of_history_configured_and_is_repeatable(
        ccb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``installation.sync_history_days`` (90 by default): requests synchronized on 2025-03-03
    are kept by a run dated 2025-06-01 and removed by one dated 2025-06-02, once."""
    outbox = open_outbox(os.environ["C2M_SYNC_CCB_DB_URL"], load_admin_config(),
                         FixedClock(dt.date(2025, 3, 3)))
    try:
        sent = outbox.next_batch(1000)
        outbox.mark_sent([(r, 0, n) for n, r in enumerate(sent)], outbox.store.clock.now())
        outbox.acknowledge([Acknowledgement(
            sync_request_id=r.id, entity_type=EntityType(r.entity_type), entity_id=r.entity_id,
            version=r.version, outcome=AckOutcome.SYNCHRONIZED, mdm_us_id=r.entity_id,
            processed_at=dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC)) for r in sent],
            dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC))
    finally:
        outbox.store.dispose()
    assert sent
    kept = run_json(capsys, "--business-date", "2025-06-01", "batch", "run", "SYNC-PURGE")
    # Queued on 2025-03-03 at noon, after the cutoff (2025-03-03 at midnight): not even read.
    assert (kept["examined"], kept["changed"], kept["nothing_to_do"]) == (0, 0, True)
    removed = run_json(capsys, "--business-date", "2025-06-02", "batch", "run", "SYNC-PURGE")
    assert (removed["examined"], removed["changed"]) == (len(sent), len(sent))
    assert run_json(capsys, "ccb", "sync", "list", "--limit", "1000") == []
    again = run_json(capsys, "--business-date", "2025-06-02", "batch", "run", "SYNC-PURGE")
    assert (again["examined"], again["changed"], again["nothing_to_do"]) == (0, 0, True)
