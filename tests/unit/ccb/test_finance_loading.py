"""Loading the finance sections of a master data file: FTs, budgets, collection and severance
processes, so that a demo or a conversion can set up what the stop consequences act on."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from sync.ccb.loading import MasterDataError, load_master_data, validate_master_data
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import FtKind, FtStatus, ProcessStatus
from sync.config.admin import load_admin_config

ADMIN = load_admin_config()
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def finance_file() -> dict[str, Any]:
    return {
        "persons": [{"id": "P-1", "name": "TENANT,TESS"}],
        "accounts": [{"id": "A-1", "main_person_id": "P-1"},
                     {"id": "A-2", "main_person_id": "P-1"}],
        "service_agreements": [
            {"id": "SA-1", "account_id": "A-1", "sa_type": "E-SURGE", "status": "active",
             "start_date": "2024-01-01"},
            {"id": "SA-2", "account_id": "A-2", "sa_type": "E-SURGE", "status": "active",
             "start_date": "2024-01-01"}],
        "financial_transactions": [
            {"id": "FT-1", "sa_id": "SA-1", "kind": "bill_segment", "amount": "41.07",
             "accounting_date": "2025-02-01"},
            {"id": "FT-2", "sa_id": "SA-1", "kind": "adjustment", "amount": "-5.00",
             "adjustment_type": "CREDIT", "accounting_date": "2025-02-02",
             "status": "canceled", "cancel_reason": "ENTRY-ERROR",
             "canceled_on": "2025-02-03"}],
        "budgets": [{"id": "NB-1", "account_id": "A-1", "non_billed": True, "sa_ids": ["SA-1"]}],
        "collection_processes": [{"id": "CP-1", "account_id": "A-1", "sa_ids": ["SA-1"]}],
        "severance_processes": [{"id": "SEV-1", "sa_id": "SA-1",
                                 "events": [{"event_type": "notice"}]}],
    }


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(MasterDataError) as raised:
        validate_master_data(data, "f.yaml", ADMIN, InMemoryCcb())
    return [problem.describe("f.yaml") for problem in raised.value.problems]


def test_finance_sections_load_and_upsert_by_id() -> None:
    store = InMemoryCcb()
    changes = store.execute(load_master_data(finance_file(), "f.yaml", ADMIN, NOW, "csr1"))
    assert "1 budgets" in changes.notes[-1]
    fts = {ft.id: ft for ft in store.financial_transactions_of_sa("SA-1")}
    assert (fts["FT-1"].kind, fts["FT-1"].amount) == (FtKind.BILL_SEGMENT, Decimal("41.07"))
    assert (fts["FT-2"].status, fts["FT-2"].cancel_reason) == (FtStatus.CANCELED, "ENTRY-ERROR")
    assert store.budget("NB-1") is not None
    assert store.collection_process("CP-1") is not None
    severance = store.severance_process("SEV-1")
    assert severance is not None
    assert severance.events[0].status is ProcessStatus.ACTIVE
    again = finance_file()
    again["budgets"][0]["status"] = "expired"
    store.execute(load_master_data(again, "f.yaml", ADMIN, NOW, "csr1"))
    reloaded = store.budget("NB-1")
    assert reloaded is not None
    assert (reloaded.status, reloaded.version) == (ProcessStatus.EXPIRED, 2)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["financial_transactions"][0].update(sa_id="SA-9"),
     "financial_transactions[0] (FT-1): sa_id: unknown SA 'SA-9'"),
    (lambda d: d["financial_transactions"][0].update(amount="1.005"),
     "financial_transactions[0] (FT-1): amount:"),
    (lambda d: d["financial_transactions"][1].update(adjustment_type="NOPE"),
     "financial_transactions[1] (FT-2): adjustment_type: unknown adjustment type 'NOPE'"),
    (lambda d: d["financial_transactions"][0].update(adjustment_type="CREDIT"),
     "financial_transactions[0] (FT-1): adjustment_type: a bill segment has none"),
    (lambda d: d["financial_transactions"][1].update(closing_bill_segment=True),
     "financial_transactions[1] (FT-2): closing_bill_segment: only a bill segment closes"),
    (lambda d: d["financial_transactions"][1].update(cancel_reason="BORED"),
     "financial_transactions[1] (FT-2): cancel_reason: unknown cancel reason 'BORED'"),
    (lambda d: d["financial_transactions"][1].update(canceled_on=None),
     "financial_transactions[1] (FT-2): canceled_on: a canceled FT needs a cancel reason"),
    (lambda d: d["financial_transactions"][0].update(cancel_reason="REBILL"),
     "financial_transactions[0] (FT-1): status: a frozen FT has no cancel reason"),
    (lambda d: d["budgets"][0].update(sa_ids=["SA-2"]),
     "budgets[0] (NB-1): sa_ids[0]: SA 'SA-2' belongs to account 'A-2', not 'A-1'"),
    (lambda d: d["collection_processes"][0].update(account_id="A-9"),
     "collection_processes[0] (CP-1): account_id: unknown account 'A-9'"),
    (lambda d: d["severance_processes"][0].update(sa_id="SA-9"),
     "severance_processes[0] (SEV-1): sa_id: unknown SA 'SA-9'"),
])
def test_each_finance_rule_names_the_record_and_field(change: Any, expected: str) -> None:
    data = finance_file()
    change(data)
    problems = problems_of(data)
    assert any(problem.startswith(f"f.yaml: {expected}") for problem in problems), problems
