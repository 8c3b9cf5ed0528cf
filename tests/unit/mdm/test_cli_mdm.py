"""``c2m-sync mdm us show|list`` against an SQLite MDM store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.cli import main
from sync.storage.mdm import MdmStore
from tests.unit.mdm.builders import D, default_admin, sp_copy, us_command


@pytest.fixture
def mdm_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'var' / 'mdm.db'}"
    (tmp_path / "var").mkdir()
    store = MdmStore(url, default_admin())
    store.create_schema()
    for command in [
        us_command("SA-TEN", sa_status="30", start=D(2024, 1, 1), end=D(2025, 6, 1)),
        us_command("SA-LL", sa_status="10", start=D(2025, 6, 1)),
        us_command("SA-GAS", sa_status="20", sp_ids=("SP-G",), us_type="G-RES-US",
                   service_points=(sp_copy("SP-G", sp_type="G-RES", mc_class="therm"),)),
    ]:
        assert store.apply(command).applied
    store.dispose()
    return url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_prints_the_subscription_as_json(mdm_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--mdm-db-url", mdm_url, "mdm", "us", "show", "SA-LL", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["external_id"] == "SA-LL"
    assert shown["status"] == "PENDING"
    assert shown["sp_links"][0]["sp_id"] == "SP-1"
    assert shown["info"] == "E-RES-US PENDING SA-LL, 1 SP, 2025-06-01 to open"


def test_show_in_human_form_lists_links_and_groups(mdm_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--mdm-db-url", mdm_url, "mdm", "us", "show", "SA-TEN")
    assert code == 0
    assert "E-RES-US ACTIVE SA-TEN, 1 SP, 2024-01-01 to 2025-06-01" in out
    assert "SP links" in out
    assert "E-RES-TOU" in out


def test_show_of_an_unknown_subscription_is_a_one_line_error(
        mdm_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--mdm-db-url", mdm_url, "mdm", "us", "show", "SA-404")
    assert code == 1
    assert out == ""
    assert err.strip() == "error: usage subscription SA-404 not found in MDM"


def test_list_filters_by_status_and_service_point(mdm_url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*filters: str) -> list[str]:
        code, out, _ = run(capsys, "--mdm-db-url", mdm_url, "mdm", "us", "list", "--json",
                           *filters)
        assert code == 0
        return [us["external_id"] for us in json.loads(out)]

    assert ids() == ["SA-GAS", "SA-LL", "SA-TEN"]
    assert ids("--status", "active") == ["SA-GAS", "SA-TEN"]
    assert ids("--sp", "SP-1") == ["SA-LL", "SA-TEN"]
    assert ids("--status", "PENDING", "--sp", "SP-1") == ["SA-LL"]
    assert ids("--sp", "SP-NONE") == []


def test_list_on_a_fresh_installation_creates_the_store(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'mdm.db'}"
    code, out, _ = run(capsys, "--mdm-db-url", url, "mdm", "us", "list")
    assert code == 0
    assert "no usage subscriptions match" in out
    assert (tmp_path / "mdm.db").exists()

