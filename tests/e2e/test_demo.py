"""``c2m-sync demo`` as a user runs it: every scene of the landlord/tenant process played through
the pipeline on the in-process bus, the report, and the CCB / MDM comparison it ends with."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main
from sync.demo import scenes
from sync.demo.stage import CCB_DB, MDM_DB, Stage

TITLES = ("The building", "stop with landlord reversion", "back-to-back",
          "the landlord start follows", "MDM rejects a snapshot", "cancel of a pending stop",
          "field work and SAACT")


def run_demo(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def report(workdir: Path) -> dict[str, Any]:
    code, out, err = run_demo("--workdir", str(workdir), "--json")
    assert (code, err) == (0, "")
    document: dict[str, Any] = json.loads(out)
    return document


def scene(report: dict[str, Any], title_part: str) -> dict[str, Any]:
    [found] = [s for s in report["scenes"] if title_part in s["title"]]
    return found


def us_of(report: dict[str, Any], us_id: str) -> dict[str, Any]:
    [found] = [us for us in report["usage_subscriptions"] if us["id"] == us_id]
    return found


def sa_of(report: dict[str, Any], sa_id: str) -> dict[str, Any]:
    [found] = [sa for sa in report["service_agreements"] if sa["id"] == sa_id]
    return found


def test_every_scene_is_played_in_order_and_says_what_happened(report: dict[str, Any]) -> None:
    played = report["scenes"]
    assert [s["number"] for s in played] == list(range(1, len(TITLES) + 1))
    for expected, actual in zip(TITLES, played, strict=True):
        assert expected in actual["title"]
        assert actual["ccb"]
        assert actual["mdm"]
        assert actual["sync"]["published"] > 0
    assert report["settings"]["broker_url"] == "memory://demo"
    assert report["settings"]["ccb_db_url"].endswith(CCB_DB)
    assert report["business_dates"] == {"first": "2025-03-03", "last": "2025-03-17"}


def test_every_sync_request_ends_synchronized_or_discarded(report: dict[str, Any]) -> None:
    requests = report["sync_requests"]
    counts = requests["counts"]
    assert counts["PENDING"] == counts["SENT"] == counts["ERROR"] == 0
    assert counts["SYNCHRONIZED"] + counts["DISCARDED"] == requests["total"]
    assert counts["SYNCHRONIZED"] > 0
    assert [r["state"] for r in requests["in_error"]] == ["DISCARDED"]


def test_steps_1_4_and_6_1_validation_error_raises_a_todo_that_ends_complete(
        report: dict[str, Any]) -> None:
    played = scene(report, "MDM rejects a snapshot")
    assert played["facts"]["codes"] == ["D2-VALUSMC"]
    [todo_id] = played["facts"]["todos"]
    [todo] = [t for t in report["todos"] if t["id"] == todo_id]
    assert (todo["todo_type"], todo["status"], todo["drill_key"]) == (
        "TD-SYNCER", "complete", "sa SA-TN02-E")
    assert "D2-VALUSMC" in todo["message"]
    assert "synchronized" in todo["log"][-1]
    [errored] = report["sync_requests"]["in_error"]
    assert errored["id"] == played["facts"]["errored"][0]
    assert [e["code"] for e in errored["errors"]] == ["D2-VALUSMC"]
    assert "superseded by" in errored["note"]
    assert played["sync"]["ack_error"] == 1
    assert us_of(report, "SA-TN02-E")["status"] == "ACTIVE"


def test_steps_4_7_and_4_8_tenant_stops_and_the_landlord_carries_unit_1(
        report: dict[str, Any]) -> None:
    landlord_ids = scene(report, "stop with landlord reversion")["facts"]["landlord"]
    assert len(landlord_ids) == 2
    for sa_id in landlord_ids:
        assert (sa_of(report, sa_id)["account_id"], sa_of(report, sa_id)["status"]) == (
            "A-LL-01", "20")
        us = us_of(report, sa_id)
        assert (us["status"], us["start_date"], us["end_date"]) == ("ACTIVE", "2025-03-17",
                                                                    None)
    for sa_id in ("SA-TN01-E", "SA-TN01-G"):
        assert sa_of(report, sa_id)["status"] == "40"
        us = us_of(report, sa_id)
        assert (us["status"], us["end_date"]) == ("INACTIVE", "2025-03-17")
        assert [link["stop"] for link in us["sp_links"]] == ["2025-03-17"]


def test_back_to_back_move_in_creates_no_landlord_sa(report: dict[str, Any]) -> None:
    played = scene(report, "back-to-back")
    assert played["facts"]["landlord_created"] == 0
    for sa_id in played["facts"]["new_tenant"]:
        us = us_of(report, sa_id)
        assert (us["account_id"], us["status"], us["start_date"]) == ("A-TN-03", "ACTIVE",
                                                                      "2025-03-10")
    for sa_id in ("SA-LL-3E", "SA-LL-3G"):
        us = us_of(report, sa_id)
        assert (us["status"], us["end_date"]) == ("INACTIVE", "2025-03-10")
    at_unit_3 = [sa["id"] for sa in report["service_agreements"]
                 if sa["premise_id"] == "PR-4410-3" and sa["account_id"] == "A-LL-01"]
    assert sorted(at_unit_3) == ["SA-LL-3E", "SA-LL-3G"]


def test_steps_5_4_to_5_6_canceled_stop_leaves_the_landlord_us_inactive(
        report: dict[str, Any]) -> None:
    played = scene(report, "cancel of a pending stop")
    for sa_id in played["facts"]["landlord"]:
        assert sa_of(report, sa_id)["status"] == "70"
        assert us_of(report, sa_id)["status"] == "INACTIVE"
    for sa_id in played["facts"]["tenant"]:
        assert sa_of(report, sa_id)["status"] == "20"
        assert (us_of(report, sa_id)["status"], us_of(report, sa_id)["end_date"]) == (
            "ACTIVE", None)


def test_steps_5_9_saact_completes_field_work_and_moves_every_due_sa(
        report: dict[str, Any]) -> None:
    played = scene(report, "field work and SAACT")
    assert len(played["facts"]["changed"]) == 8
    due = [fa for fa in report["field_activities"] if fa["scheduled_date"] <= "2025-03-17"
           and fa["status"] != "canceled"]
    assert due
    assert all(fa["status"] == "complete" and fa["completion_read"] for fa in due)


def test_ccb_and_mdm_agree_with_zero_differences(report: dict[str, Any]) -> None:
    comparison = report["comparison"]
    assert comparison["agree"] is True
    assert set(comparison["counts"].values()) == {0}
    assert comparison["drifts"] == []
    sas = len(report["service_agreements"])
    assert comparison["expected"] == comparison["actual"] == sas
    assert comparison["summary"] == (f"CCB and MDM agree: {sas} SAs, {sas} usage "
                                     "subscriptions, 0 differences")


def test_a_second_run_on_the_same_workdir_gives_the_same_result(
        report: dict[str, Any], workdir: Path) -> None:
    code, out, _err = run_demo("--workdir", str(workdir), "--json")
    assert code == 0
    again = json.loads(out)
    assert again["settings"]["topics"] != report["settings"]["topics"]  # fresh topics per run
    for document in (again, report):
        del document["settings"]["topics"]
    assert again == report
    # the two databases, the files their writers take turns with (sync.storage.writer_turns)
    # and the lock of the demo's SAACT run (sync.storage.run_locks), emptied once it ended
    assert sorted(path.name for path in workdir.iterdir()) == sorted(
        [CCB_DB, MDM_DB, f"{CCB_DB}-batch-SAACT", *(f"{db}-{lock}" for db in (CCB_DB, MDM_DB)
                                                    for lock in ("turnstile", "writer"))])
    assert (workdir / f"{CCB_DB}-batch-SAACT").read_text("utf-8") == ""


def test_human_output_names_every_scene_and_ends_with_the_agreement_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment's broker is not the demo's: make demo always runs in-process.
    monkeypatch.setenv("C2M_SYNC_BROKER_URL", "kafka://127.0.0.1:1")
    code, out, err = run_demo("--workdir", str(tmp_path))
    assert (code, err) == (0, "")
    assert out.startswith("c2m-sync demo on memory://demo;")
    for number, title in enumerate(TITLES, start=1):
        assert any(line.startswith(f"{number}. ") and title in line
                   for line in out.splitlines()), title
    for table in ("Service agreements (CCB)", "Usage subscriptions (MDM)",
                  "Field activities (CCB)", "To Do entries (CCB)", "Sync requests by state",
                  "Sync requests that were in error"):
        assert table in out
    assert "SA-TN01-E" in out  # ids are not cut short when the output is not a terminal
    last = out.strip().splitlines()[-1]
    assert last.startswith("CCB and MDM agree: ")
    assert last.endswith(" 0 differences")


async def leave_mdm_behind(stage: Stage) -> scenes.Scene:
    """A CCB change that is never settled: MDM stays on the previous snapshot."""
    stage.run(scenes.RequestStop(account_id=scenes.TENANT_1, premise_id=scenes.UNIT_1,
                                 stop_date=scenes.MOVE_OUT))
    return scenes.Scene("unsettled stop", "", "stop requested", "not told", {})


def test_drift_is_reported_and_the_exit_code_is_not_zero(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.demo.play.SCENES", (scenes.load_building, leave_mdm_behind))
    code, out, _err = run_demo("--workdir", str(tmp_path), "--json")
    assert code == 1
    comparison = json.loads(out)["comparison"]
    assert comparison["agree"] is False
    assert comparison["counts"]["MISSING_IN_MDM"] == 2  # the landlord's reverted starts
    assert comparison["counts"]["STALE_VERSION"] == 2  # the tenant's SAs
    assert {d["field"] for d in comparison["drifts"]
            if d["kind"] == "FIELD_DIFFERENCE"} >= {"endDate", "spLinks[0].stop"}
    assert comparison["summary"].startswith("CCB and MDM disagree: 8 SAs, 6 usage")


@pytest.mark.parametrize(("broker", "reason"), [
    ("http://localhost:9092", "memory:// or kafka://"),
    ("kafka://localhost:abc", "port 'abc' is not a number from 1 to 65535"),
])
def test_a_bad_broker_url_is_a_one_line_error_and_runs_nothing(tmp_path: Path, broker: str,
                                                               reason: str) -> None:
    code, out, err = run_demo("--workdir", str(tmp_path), "--broker", broker)
    assert code == 2
    assert err.startswith("error: invalid settings: option --broker: ")
    assert reason in err
    assert out == ""
    assert list(tmp_path.iterdir()) == []


def test_a_workdir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "not-a-folder"
    target.write_text("keep me")
    code, _out, err = run_demo("--workdir", str(target))
    assert code == 1
    assert err.strip() == f"error: --workdir {target}: exists and is not a folder"
    assert target.read_text() == "keep me"


async def stop_before_the_start(stage: Stage) -> scenes.Scene:
    stage.run(scenes.RequestStop(account_id=scenes.TENANT_1, sa_ids=("SA-TN01-E",),
                                 stop_date=scenes.MOVE_OUT.replace(year=2020)))
    raise AssertionError("the stop should have been refused")


def test_a_scene_the_data_does_not_support_is_a_one_line_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sync.demo.play.SCENES", (scenes.load_building, stop_before_the_start))
    code, out, err = run_demo("--workdir", str(tmp_path))
    assert (code, out) == (1, "")
    assert err.startswith("error: scene 2 (stop before the start) failed: SA 'SA-TN01-E'")
    assert len(err.strip().splitlines()) == 1
