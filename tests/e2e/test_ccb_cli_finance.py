"""``c2m-sync ccb ft ...``, ``cancel-sa`` and ``reinstate`` as a CSR drives them: a stopped
water SA gets its final bill, closes when paid, is reactivated by a late charge, and is
reinstated once its closing bill is canceled (steps 6.5-7.9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.test_ccb_cli import Cli

MASTER_DATA = {
    "persons": [{"id": "P-1", "name": "TENANT,TESS"}],
    "accounts": [{"id": "A-1", "main_person_id": "P-1"}],
    "premises": [{"id": "PR-1", "address": {"line1": "12 Oak St", "city": "Springfield",
                                             "state": "IL", "postal_code": "62701"}}],
    "service_points": [{"id": "SP-W", "premise_id": "PR-1", "sp_type": "W-RES"}],
    "service_agreements": [{"id": "SA-W", "account_id": "A-1", "sa_type": "W-RES",
                            "status": "active", "start_date": "2024-01-01",
                            "premise_id": "PR-1", "links": ["SP-W"]}],
    "budgets": [{"id": "NB-1", "account_id": "A-1", "non_billed": True, "sa_ids": ["SA-W"]}],
}


@pytest.fixture
def cli(sqlite_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    runner = Cli(sqlite_url, capsys)
    data = tmp_path / "water.yaml"
    data.write_text(yaml.safe_dump(MASTER_DATA), "utf-8")
    runner.json("ccb", "load", str(data))
    return runner


def status_of(cli: Cli, sa_id: str = "SA-W") -> str:
    listing = cli.json("ccb", "ft", "list", sa_id)
    return str(listing["status"])


def test_steps_3_3_to_7_9_from_stop_to_reinstate(cli: Cli) -> None:
    stopped = cli.json("ccb", "request-stop", "A-1", "--sa", "SA-W", "--stop-date", "2025-03-03")
    assert stopped["sas"]["SA-W"]["status"] == "40"
    assert "SA SA-W removed from non-billed budget NB-1; the budget covers no SA any more and" \
           " expired" in stopped["notes"]
    bill = cli.json("ccb", "ft", "add", "SA-W", "--kind", "bill_segment", "--amount", "41.20",
                    "--closing")
    (closing_id,) = bill["financial_transactions"]
    paid = cli.json("ccb", "ft", "add", "SA-W", "--kind", "payment", "--amount", "-41.20")
    assert paid["sas"]["SA-W"]["status"] == "60"
    late = cli.json("ccb", "ft", "add", "SA-W", "--kind", "adjustment", "--amount", "3.00",
                    "--adjustment-type", "CHARGE")
    assert late["sas"]["SA-W"]["status"] == "50"
    listing = cli.json("ccb", "ft", "list", "SA-W")
    assert (listing["balance"], len(listing["financial_transactions"])) == ("3.00", 3)
    refused = cli.fails("ccb", "reinstate", "SA-W")
    assert refused == (f"error: SA 'SA-W' in status 50 (reactivated) cannot reinstate: closing"
                       f" bill segment {closing_id} must be canceled first")
    cli.json("ccb", "ft", "cancel", closing_id, "--reason", "REINSTATE")
    code, out, _err = cli.run("ccb", "reinstate", "SA-W")
    assert code == 0
    assert "SA SA-W reinstated: active again" in out
    assert status_of(cli) == "20"


def test_cancel_sa_needs_every_ft_canceled(cli: Cli) -> None:
    added = cli.json("ccb", "ft", "add", "SA-W", "--kind", "bill_segment", "--amount", "10")
    (ft_id,) = added["financial_transactions"]
    assert cli.fails("ccb", "cancel-sa", "SA-W") == (
        f"error: SA 'SA-W' in status 20 (active) cannot cancel SA: financial transaction"
        f" {ft_id} not canceled; cancel every FT of the SA first")
    cli.json("ccb", "ft", "cancel", ft_id, "--reason", "SA-CANCEL")
    assert cli.fails("ccb", "ft", "cancel", ft_id, "--reason", "SA-CANCEL").startswith(
        f"error: financial transaction '{ft_id}': status: already canceled on 2025-03-03")
    canceled = cli.json("ccb", "cancel-sa", "SA-W")
    assert canceled["sas"]["SA-W"]["status"] == "70"
    assert canceled["todos"]


def test_bad_finance_input_is_one_line(cli: Cli) -> None:
    assert cli.fails("ccb", "ft", "cancel", "FT-404", "--reason", "REBILL") == (
        "error: financial transaction 'FT-404' not found (ft_id)")
    (ft_id,) = cli.json("ccb", "ft", "add", "SA-W", "--kind", "bill_segment",
                        "--amount", "5")["financial_transactions"]
    assert cli.fails("ccb", "ft", "cancel", ft_id, "--reason", "NOPE").startswith(
        f"error: financial transaction '{ft_id}': cancel_reason: unknown cancel reason 'NOPE'")
    with pytest.raises(SystemExit) as usage:
        cli.run("ccb", "ft", "add", "SA-W", "--kind", "payment", "--amount", "1.234")
    assert usage.value.code == 2
    _out, err = cli.capsys.readouterr()
    assert "not an amount with at most two decimals: '1.234'" in err


@pytest.mark.parametrize("amount", ["1e30", "1e400", "-1e400", "1000000000000", "1e12"])
def test_an_amount_beyond_what_an_ft_holds_is_refused_naming_the_option(
        cli: Cli, amount: str) -> None:
    before = cli.row_counts()
    with pytest.raises(SystemExit) as usage:
        cli.run("ccb", "ft", "add", "SA-W", "--kind", "adjustment", f"--amount={amount}")
    assert usage.value.code == 2
    err = cli.capsys.readouterr().err
    assert "Traceback" not in err
    assert (f"argument --amount: amount {amount!r} out of range: at most 999999999999.99"
            " either way (14 digits, 2 of them decimals)") in err
    assert cli.row_counts() == before


def test_the_largest_amount_an_ft_holds_is_taken(cli: Cli) -> None:
    cli.json("ccb", "ft", "add", "SA-W", "--kind", "payment", "--amount=-999999999999.99")
    assert cli.json("ccb", "ft", "list", "SA-W")["balance"] == "-999999999999.99"
