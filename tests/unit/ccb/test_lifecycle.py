"""The SA lifecycle transition table (SPEC.md section 3): every allowed transition, every other
one rejected with an error naming the SA, its status and the action."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from sync.ccb.errors import InvalidTransition
from sync.ccb.lifecycle import TRANSITIONS, Action, next_status, transition
from sync.ccb.memory import InMemoryCcb
from sync.ccb.model import SaStatus, ServiceAgreement
from sync.ccb.work import Work

from .world import ADMIN, TODAY, now_of

S = SaStatus
SPEC_ROWS = {
    (S.PENDING_START, Action.ACTIVATE): S.ACTIVE,
    (S.PENDING_START, Action.CHANGE_START_DATE): S.PENDING_START,
    (S.PENDING_START, Action.CANCEL_PENDING_START): S.CANCELED,
    (S.ACTIVE, Action.REQUEST_STOP): S.PENDING_STOP,
    (S.PENDING_STOP, Action.CHANGE_STOP_DATE): S.PENDING_STOP,
    (S.PENDING_STOP, Action.CANCEL_PENDING_STOP): S.ACTIVE,
    (S.PENDING_STOP, Action.STOP): S.STOPPED,
    (S.STOPPED, Action.CLOSE): S.CLOSED,
    (S.CLOSED, Action.REACTIVATE): S.REACTIVATED,
    (S.REACTIVATED, Action.CLOSE): S.CLOSED,
    (S.STOPPED, Action.REINSTATE): S.ACTIVE,
    (S.REACTIVATED, Action.REINSTATE): S.ACTIVE,
    (S.CLOSED, Action.REINSTATE): S.ACTIVE,
    (S.PENDING_START, Action.CANCEL_SA): S.CANCELED,
    (S.ACTIVE, Action.CANCEL_SA): S.CANCELED,
    (S.PENDING_STOP, Action.CANCEL_SA): S.CANCELED,
    (S.STOPPED, Action.CANCEL_SA): S.CANCELED,
}
# A pending start that carries its stop date (the landlord covering a gap until a new tenant).
GAP_ROWS = {
    (S.PENDING_START, Action.REQUEST_STOP): S.PENDING_START,
    (S.PENDING_START, Action.CHANGE_STOP_DATE): S.PENDING_START,
    (S.PENDING_START, Action.CANCEL_PENDING_STOP): S.PENDING_START,
}


def sa_in(status: SaStatus) -> ServiceAgreement:
    return ServiceAgreement(id="SA-9", account_id="A-9", sa_type="E-RES", status=status,
                            start_date=dt.date(2025, 1, 1))


def test_the_table_is_the_spec_table_plus_the_gap_rows() -> None:
    assert dict(TRANSITIONS) == {(None, Action.START_SERVICE): S.PENDING_START,
                                 **SPEC_ROWS, **GAP_ROWS}


@pytest.mark.parametrize(("row", "to"), list(SPEC_ROWS.items()) + list(GAP_ROWS.items()),
                         ids=lambda value: str(value))
def test_every_allowed_transition_audits_and_records_the_change(
        row: tuple[SaStatus, Action], to: SaStatus) -> None:
    status, action = row
    work = Work(InMemoryCcb(), InMemoryCcb(), ADMIN, TODAY, now_of(TODAY), "csr2")
    changed = transition(work, sa_in(status), action, "why")
    assert changed.status is to
    (entry,) = changed.audit
    assert (entry.action, entry.from_status, entry.to_status, entry.user, entry.details) == (
        action.value, status, to, "csr2", "why")
    assert work.changes.changed == [("SA", "SA-9")]
    assert changed.version == 1  # new to this store: inserted


FORBIDDEN = [(status, action) for status, action in itertools.product(SaStatus, Action)
             if (status, action) not in TRANSITIONS]


@pytest.mark.parametrize(("status", "action"), FORBIDDEN, ids=lambda value: str(value))
def test_every_other_transition_is_rejected_naming_sa_status_and_action(
        status: SaStatus, action: Action) -> None:
    with pytest.raises(InvalidTransition) as raised:
        next_status(sa_in(status), action)
    message = str(raised.value)
    assert f"SA 'SA-9' in status {status.value} ({status.label}) cannot {action.value}" == message
    assert (raised.value.sa_id, raised.value.status, raised.value.action) == (
        "SA-9", status, action.value)


def test_canceled_is_final() -> None:
    assert [a for (s, a) in TRANSITIONS if s is SaStatus.CANCELED] == []


def test_updated_sa_carries_the_read_version_plus_one() -> None:
    store = InMemoryCcb()
    store.add(sa_in(SaStatus.ACTIVE).model_copy(update={"version": 4}))
    work = Work(store, store, ADMIN, TODAY, now_of(TODAY), "csr1")
    once = transition(work, work.sa("SA-9") or sa_in(S.ACTIVE), Action.REQUEST_STOP,
                      end_date=TODAY)
    twice = transition(work, once, Action.CHANGE_STOP_DATE, end_date=TODAY)
    assert (once.version, twice.version) == (5, 5)
