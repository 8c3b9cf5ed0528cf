"""Stop consequences and finance through every CCB store (in-memory, SQLite, PostgreSQL): the
new collections are written and read back in the unit of work of the command, money stays
exact, and a refused command leaves the store as it was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from sync.ccb.changes import Changes
from sync.ccb.commands import (
    AddFinancialTransaction,
    CancelFinancialTransaction,
    CancelSa,
    Command,
    ReinstateSa,
    RequestStop,
)
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import InvalidCommand, InvalidTransition, NotFound
from sync.ccb.finance import balance
from sync.ccb.model import (
    Account,
    Budget,
    CollectionProcess,
    FinancialTransaction,
    FtKind,
    FtStatus,
    Person,
    Premise,
    ProcessStatus,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
    SeveranceEvent,
    SeveranceProcess,
)
from sync.config.admin import load_admin_config
from tests.contract.ccb_store_support import STORE_KINDS, StoreUnderTest, address, store_of_kind

BASE = load_admin_config()
# No fieldwork: a stop requested for today is stopped at once by the immediate-stop algorithm.
ADMIN = BASE.model_copy(update={"sa_types": {
    code: sa_type.model_copy(update={"fieldwork_required": False})
    for code, sa_type in BASE.sa_types.items()}})
TODAY = dt.date(2025, 3, 3)
NOW = dt.datetime(2025, 3, 3, 15, 0, tzinfo=dt.UTC)
SINCE = dt.date(2024, 1, 1)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[StoreUnderTest]:
    yield from store_of_kind(request, request.param)


def seed(store: StoreUnderTest) -> None:
    """Account A-1: electric and water at PR-1, a surge plan (auto-stop), a deposit; a
    non-billed budget, a budget, a collection and a severance process, a service fee."""
    changes = Changes()
    changes.put_person(Person(id="P-1", name="TENANT,TESS"))
    changes.put_account(Account(id="A-1", main_person_id="P-1"))
    changes.put_premise(Premise(id="PR-1", address=address()))
    for sp_id, sp_type in (("SP-E", "E-RES"), ("SP-W", "W-RES")):
        changes.put_service_point(ServicePoint(id=sp_id, premise_id="PR-1", sp_type=sp_type))
    for sa_id, sa_type, premise_id, sp_id in (("SA-E", "E-RES", "PR-1", "SP-E"),
                                              ("SA-W", "W-RES", "PR-1", "SP-W"),
                                              ("SA-SURGE", "E-SURGE", None, None),
                                              ("SA-DEP", "DEP-RES", None, None)):
        changes.put_sa(ServiceAgreement(id=sa_id, account_id="A-1", sa_type=sa_type,
                                        status=SaStatus.ACTIVE, start_date=SINCE,
                                        premise_id=premise_id))
        if sp_id is not None:
            changes.put_link(SaSpLink(id=f"L-{sa_id}", sa_id=sa_id, sp_id=sp_id,
                                      start_date=SINCE))
    changes.put_budget(Budget(id="NB-1", account_id="A-1", non_billed=True,
                              sa_ids=("SA-E", "SA-W")))
    changes.put_budget(Budget(id="BU-1", account_id="A-1", sa_ids=("SA-E",)))
    changes.put_collection_process(CollectionProcess(id="CP-1", account_id="A-1",
                                                     sa_ids=("SA-E", "SA-W")))
    changes.put_severance_process(SeveranceProcess(
        id="SEV-1", sa_id="SA-E", events=(SeveranceEvent(event_type="notice"),)))
    changes.put_financial_transaction(FinancialTransaction(
        id="FT-FEE", sa_id="SA-E", kind=FtKind.ADJUSTMENT, amount=Decimal("24.99"),
        accounting_date=SINCE, adjustment_type="SVC-FEE"))
    store.seed(changes)


def run(store: StoreUnderTest, command: Command) -> Changes:
    return store.execute(unit_of_work(command, ADMIN, TODAY, NOW))


def sa(store: StoreUnderTest, sa_id: str) -> ServiceAgreement:
    found = store.read(lambda view: view.sa(sa_id))
    assert found is not None
    return found


def test_steps_3_3_to_4_4_stop_consequences_are_stored(store: StoreUnderTest) -> None:
    seed(store)
    run(store, RequestStop(account_id="A-1", premise_id="PR-1", stop_date=TODAY))
    assert {sa_id: sa(store, sa_id).status for sa_id in ("SA-E", "SA-W", "SA-SURGE", "SA-DEP")} \
        == {"SA-E": SaStatus.STOPPED, "SA-W": SaStatus.STOPPED,
            "SA-SURGE": SaStatus.STOPPED, "SA-DEP": SaStatus.PENDING_STOP}
    state = store.read(lambda view: {
        "budgets": {b.id: (b.sa_ids, b.status) for b in view.budgets_of_account("A-1")},
        "collection": [(p.sa_ids, p.status) for p in view.collection_processes_of_account("A-1")],
        "severance": [(p.status, p.events[0].status)
                      for p in view.severance_processes_of_sa("SA-E")],
        "refunds": [(ft.adjustment_type, ft.amount) for ft in view.financial_transactions_of_sa(
            "SA-E") if ft.id != "FT-FEE"],
        "final_bill": view.account("A-1").final_bill_pending,  # type: ignore[union-attr]
    })
    assert state == {
        "budgets": {"NB-1": ((), ProcessStatus.EXPIRED),  # 3.5-3.6
                    "BU-1": (("SA-E",), ProcessStatus.CANCELED)},  # 4.2
        "collection": [((), ProcessStatus.CANCELED)],  # 3.8-3.9
        "severance": [(ProcessStatus.CANCELED, ProcessStatus.CANCELED)],  # 3.7
        "refunds": [("SVC-FEE-RF", Decimal("-24.99"))],  # C2M-SAST-RF
        "final_bill": True,  # 4.0
    }
    assert "stop consequence" in [entry.action for entry in sa(store, "SA-E").audit]


def test_steps_7_3_7_4_close_and_reactivate_are_stored_and_recorded(
        store: StoreUnderTest) -> None:
    seed(store)
    run(store, RequestStop(account_id="A-1", sa_ids=("SA-W",), stop_date=TODAY))
    recorded = len(store.entity_changes())
    for amount, kind, closing in (("33.10", FtKind.BILL_SEGMENT, True),
                                  ("-33.10", FtKind.PAYMENT, False)):
        run(store, AddFinancialTransaction(sa_id="SA-W", kind=kind, amount=Decimal(amount),
                                           closing_bill_segment=closing))
    assert sa(store, "SA-W").status is SaStatus.CLOSED
    assert store.read(lambda view: balance(view.financial_transactions_of_sa("SA-W"))) \
        == Decimal("0.00")
    run(store, AddFinancialTransaction(sa_id="SA-W", kind=FtKind.ADJUSTMENT,
                                       amount=Decimal("0.01"), adjustment_type="CHARGE"))
    assert sa(store, "SA-W").status is SaStatus.REACTIVATED
    # Only the two status changes reach the outbox hook; FTs are not part of the SA snapshot.
    assert store.entity_changes()[recorded:] == [("SA", "SA-W"), ("SA", "SA-W")]


def test_steps_6_5_to_7_2_cancel_fts_then_the_sa(store: StoreUnderTest) -> None:
    seed(store)
    run(store, CancelFinancialTransaction(ft_id="FT-FEE", reason="SA-CANCEL"))
    fee = store.read(lambda view: view.financial_transaction("FT-FEE"))
    assert fee is not None
    assert (fee.status, fee.cancel_reason, fee.canceled_on) == (
        FtStatus.CANCELED, "SA-CANCEL", TODAY)
    changes = run(store, CancelSa(sa_id="SA-E"))
    assert sa(store, "SA-E").status is SaStatus.CANCELED
    (todo_id,) = changes.todos
    todo = store.read(lambda view: view.todo(todo_id))
    assert todo is not None
    assert todo.todo_type == "TD-SACAN"


def test_steps_7_6_to_7_9_reinstate_is_stored(store: StoreUnderTest) -> None:
    seed(store)
    run(store, RequestStop(account_id="A-1", premise_id="PR-1", stop_date=TODAY))
    run(store, ReinstateSa(sa_id="SA-E"))
    reinstated = sa(store, "SA-E")
    assert (reinstated.status, reinstated.end_date) == (SaStatus.ACTIVE, None)
    links = store.read(lambda view: view.links_of_sa("SA-E"))
    assert [link.stop_date for link in links] == [None]
    account = store.read(lambda view: view.account("A-1"))
    assert account is not None
    assert not account.final_bill_pending


@pytest.mark.parametrize(("command", "error"), [
    (CancelSa(sa_id="SA-E"), InvalidTransition),  # FT-FEE is not canceled
    (CancelFinancialTransaction(ft_id="FT-404", reason="ENTRY-ERROR"), NotFound),
    (ReinstateSa(sa_id="SA-E"), InvalidTransition),  # active, not stopped
])
def test_refused_commands_change_nothing(store: StoreUnderTest, command: Command,
                                         error: type[Exception]) -> None:
    seed(store)
    before = store.dump()
    with pytest.raises(error):
        run(store, command)
    assert store.dump() == before


def test_cancel_of_an_already_canceled_ft_changes_nothing(store: StoreUnderTest) -> None:
    seed(store)
    run(store, CancelFinancialTransaction(ft_id="FT-FEE", reason="ENTRY-ERROR"))
    before = store.dump()
    with pytest.raises(InvalidCommand, match="already canceled"):
        run(store, CancelFinancialTransaction(ft_id="FT-FEE", reason="REBILL"))
    assert store.dump() == before
