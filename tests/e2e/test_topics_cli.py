"""`c2m-sync topics` as an operator runs it: create (idempotent), list, describe."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from sync.cli import main


@pytest.fixture
def topic_names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh topic names (so runs against a shared broker do not meet), set as an operator
    would: through the environment."""
    suffix = uuid.uuid4().hex[:8]
    names = {"sync_requests": f"e2e.requests-{suffix}", "acknowledgements": f"e2e.acks-{suffix}",
             "dead_letters": f"e2e.dead-{suffix}"}
    monkeypatch.setenv("C2M_SYNC_TOPIC_SYNC_REQUESTS", names["sync_requests"])
    monkeypatch.setenv("C2M_SYNC_TOPIC_ACKNOWLEDGEMENTS", names["acknowledgements"])
    monkeypatch.setenv("C2M_SYNC_TOPIC_DEAD_LETTERS", names["dead_letters"])
    monkeypatch.setenv("C2M_SYNC_TOPIC_PARTITIONS", "4")
    return names


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_create_on_the_in_process_bus_makes_the_three_topics_and_explains_its_lifetime(
    capsys: pytest.CaptureFixture[str], topic_names: dict[str, str]
) -> None:
    code, created = run_json(capsys, "--broker", "memory://", "topics", "create")
    assert code == 0
    topics = {t["name"]: t for t in created["topics"]}
    requests = topics[topic_names["sync_requests"]]
    assert requests["compacted"] is True
    assert requests["configs"] == {"cleanup.policy": "compact",
                                   "min.compaction.lag.ms": "604800000"}
    assert requests["status"] == "created"
    assert {t["partitions"] for t in topics.values()} == {4}
    assert topics[topic_names["dead_letters"]]["configs"] == {"cleanup.policy": "delete"}
    assert "lives only inside one process" in str(created["note"])


def test_human_create_prints_the_table_and_the_note(
    capsys: pytest.CaptureFixture[str], topic_names: dict[str, str]
) -> None:
    assert main(["--broker", "memory://", "topics", "create"]) == 0
    out = capsys.readouterr().out
    assert topic_names["acknowledgements"] in out
    assert "compact" in out
    assert "note: the in-process bus (memory://) lives only inside one process" in out


def test_describe_in_a_new_process_finds_no_in_process_topics(
    capsys: pytest.CaptureFixture[str], topic_names: dict[str, str]
) -> None:
    code, described = run_json(capsys, "--broker", "memory://fresh-" + uuid.uuid4().hex,
                               "topics", "describe")
    assert code == 1
    assert described["missing"] == sorted(topic_names.values())


def test_unreachable_broker_is_one_line_and_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--broker", "kafka://127.0.0.1:1", "topics", "create"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: kafka://127.0.0.1:1: connecting to Kafka at 127.0.0.1:1 "
                          "failed after 5 attempts: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.kafka
def test_create_is_idempotent_and_reports_a_topic_that_differs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    topic_names: dict[str, str], kafka_bootstrap: str,
) -> None:
    broker = ["--broker", f"kafka://{kafka_bootstrap}"]
    code, first = run_json(capsys, *broker, "topics", "create")
    assert code == 0
    assert {t["status"] for t in first["topics"]} == {"created"}
    code, second = run_json(capsys, *broker, "topics", "create")
    assert code == 0
    assert {t["status"] for t in second["topics"]} == {"exists"}

    code, described = run_json(capsys, *broker, "topics", "describe")
    assert code == 0
    by_name = {t["name"]: t for t in described["topics"]}
    requests = by_name[topic_names["sync_requests"]]
    assert requests["partitions"] == 4
    assert requests["configs"]["cleanup.policy"] == "compact"
    assert requests["configs"]["min.compaction.lag.ms"] == "604800000"
    assert [o["end"] for o in requests["offsets"]] == [0, 0, 0, 0]

    code, listed = run_json(capsys, *broker, "topics", "list")
    assert set(topic_names.values()) <= set(listed["topics"])

    monkeypatch.setenv("C2M_SYNC_TOPIC_PARTITIONS", "6")
    code, third = run_json(capsys, *broker, "topics", "create")
    assert code == 1
    problems = [p for t in third["topics"] for p in t["problems"]]
    assert f"topic {topic_names['sync_requests']!r} has 4 partitions, configured 6" in problems
