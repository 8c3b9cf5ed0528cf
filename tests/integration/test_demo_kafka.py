"""``c2m-sync demo --broker kafka://...``: the same scenes over a genuine Apache Kafka broker
end with both sides in agreement."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main


@pytest.mark.timeout(600)
def test_demo_over_kafka_ends_with_ccb_and_mdm_in_agreement(kafka_broker: Any,
                                                             tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", "--broker", str(kafka_broker.url), "--workdir", str(tmp_path),
                     "--json"])
    assert code == 0, err.getvalue()
    report = json.loads(out.getvalue())
    assert len(report["scenes"]) == 7
    counts = report["sync_requests"]["counts"]
    assert counts["SYNCHRONIZED"] > 0
    assert counts["PENDING"] == counts["SENT"] == counts["ERROR"] == 0
    assert [e["errors"][0]["code"] for e in report["sync_requests"]["in_error"]] == [
        "D2-VALUSMC"]
    assert report["comparison"]["agree"] is True
