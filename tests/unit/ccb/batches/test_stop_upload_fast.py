"""STOPUPL's set-based path (steps 1.1-1.9): which rows it may decide from plain facts. Every
fact that lets the general rules do more than the common stop request (another SA to revert
to or to check, fieldwork, an immediate stop, a refusal to report) sends the row the general
way; the equality of what both ways write is `tests/contract/test_stop_upload_fast_path.py`."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from sync.ccb.batches.stop_upload import StopRequestRow
from sync.ccb.batches.stop_upload_fast import LinkPeriod, StopFacts, fast_stop, fast_stops
from sync.config.admin import AdminConfig, FaCreation, load_admin_config

ADMIN = load_admin_config()
TODAY = dt.date(2025, 3, 3)
LATER = TODAY + dt.timedelta(days=14)


SINCE = dt.date(2024, 6, 1)


def _link(sa_id: str = "SA-1", status: str = "20", start: dt.date = SINCE,
          stop: dt.date | None = None, *, sp_id: str = "SP-1", sa_type: str = "W-RES",
          link_id: str | None = None) -> LinkPeriod:
    return LinkPeriod(link_id or f"L-{sa_id}", sp_id, sa_id, sa_type, status, start, stop)


def _facts(sa_id: str = "SA-1", account_id: str = "A-1", **changes: Any) -> StopFacts:
    facts = StopFacts(
        sa_id=sa_id, account_id=account_id, sa_type="W-RES", status="20",
        start_date=SINCE, end_date=None, master_sa_id=None, premise_id="PR-1",
        version=3, main_person_id="P-1", main_person_found=True, premise_found=True,
        premise_may_revert=False, has_sub_sas=False, live_sa_at_premise=False,
        links=(_link(sa_id),), others_at_service_points=())
    return dataclasses.replace(facts, **changes)


# An earlier tenant at the same service point, stopped the day this SA started.
EARLIER = _link("SA-0", "40", dt.date(2023, 1, 1), SINCE)


def _row(number: int = 1, account_id: str = "A-1", sa_ids: tuple[str, ...] = ("SA-1",),
         **changes: Any) -> StopRequestRow:
    return dataclasses.replace(StopRequestRow(number, account_id, LATER, sa_ids), **changes)


def _admin(**algorithms: str | None) -> AdminConfig:
    return ADMIN.model_copy(update={
        "algorithms": ADMIN.algorithms.model_copy(update=algorithms)})


def test_step_1_1_the_common_stop_request_is_decided_set_based() -> None:
    assert fast_stop(_row(), _facts(), ADMIN, TODAY, "STOPUPL")
    assert fast_stop(_row(contact_method="email"), _facts(), ADMIN, TODAY, "STOPUPL")
    # Without a premise there is no premise to find.
    assert fast_stop(_row(), _facts(premise_id=None, premise_found=False), ADMIN, TODAY,
                     "STOPUPL")


@pytest.mark.parametrize("facts", [
    None,
    _facts(account_id="A-OTHER"),  # refused: belongs to another account
    _facts(status="10"),  # refused: a pending start
    _facts(status="30", end_date=LATER),  # a change of stop date
    _facts(end_date=LATER),
    _facts(master_sa_id="SA-M"),
    _facts(has_sub_sas=True),  # the sub SAs follow
    _facts(start_date=LATER + dt.timedelta(days=1)),  # refused: stop before start
    _facts(sa_type="NO-SUCH-TYPE"),
    _facts(sa_type="E-RES"),  # fieldwork: a stop FA at request time
    _facts(live_sa_at_premise=True),  # reversion may retire or start a landlord SA
    # Another live SA at the service point: a next tenant, another tenant to revert.
    _facts(others_at_service_points=(_link("SA-2", "10", LATER + dt.timedelta(days=5)),)),
    _facts(others_at_service_points=(_link("SA-2", "30", dt.date(2023, 1, 1), LATER),)),
    # The history overlaps this SA, or itself: the general rules' last check refuses it.
    _facts(others_at_service_points=(_link("SA-0", "40", dt.date(2023, 1, 1),
                                           SINCE + dt.timedelta(days=1)),)),
    _facts(others_at_service_points=(EARLIER, _link("SA-00", "60", dt.date(2022, 1, 1),
                                                    dt.date(2023, 6, 1)))),
    _facts(others_at_service_points=(_link("SA-0", "40", sa_type="NO-SUCH-TYPE"),)),
    _facts(premise_may_revert=True),  # a landlord agreement here or up the chain
    _facts(main_person_found=False),  # refused: the contact's person is missing
    _facts(main_person_id=""),
    _facts(premise_found=False),  # refused: the contact's premise is missing
])
def test_step_1_1_facts_that_need_the_general_rules(facts: StopFacts | None) -> None:
    assert not fast_stop(_row(), facts, ADMIN, TODAY, "STOPUPL")


@pytest.mark.parametrize("row", [
    _row(sa_ids=("SA-1", "SA-2")),
    _row(sa_ids=()),
    _row(premise_id="PR-1"),
    _row(contact_method="pigeon"),  # refused: unknown method
    _row(stop_date=TODAY),  # the immediate stop stops it at once
    _row(stop_date=TODAY - dt.timedelta(days=ADMIN.installation.max_back_dated_stop_days + 1)),
])
def test_step_1_1_rows_that_need_the_general_rules(row: StopRequestRow) -> None:
    assert not fast_stop(row, _facts(), ADMIN, TODAY, "STOPUPL")


def test_step_1_1_algorithms_and_settings_decide_what_is_known() -> None:
    facts, row = _facts(), _row()
    assert not fast_stop(row, facts, _admin(reversion="OTHER-REV"), TODAY, "STOPUPL")
    assert not fast_stop(row, facts, _admin(fieldwork="OTHER-FW"), TODAY, "STOPUPL")
    assert not fast_stop(row, facts, _admin(immediate_stop="OTHER-IS"), TODAY, "STOPUPL")
    assert not fast_stop(row, facts, ADMIN, TODAY, "  ")  # refused: a blank user
    # Without the immediate stop, a stop dated today stays a pending stop.
    today_row = _row(stop_date=TODAY)
    assert fast_stop(today_row, facts, _admin(immediate_stop=None), TODAY, "STOPUPL")
    # Fieldwork created later by the pending monitor: nothing at request time.
    monitor = ADMIN.model_copy(update={"installation": ADMIN.installation.model_copy(
        update={"fa_creation": FaCreation.BY_PENDING_MONITOR})})
    assert fast_stop(row, _facts(sa_type="E-RES"), monitor, TODAY, "STOPUPL")
    # An installation without the stop contact type records no contact: no person needed.
    without = ADMIN.model_copy(update={"contact_types": {
        code: kind for code, kind in ADMIN.contact_types.items() if code != "STOPSVC"}})
    assert fast_stop(_row(contact_method="pigeon"), _facts(main_person_found=False), without,
                     TODAY, "STOPUPL")


def test_step_1_1_earlier_tenants_at_the_service_point_are_history() -> None:
    row = _row()
    assert fast_stop(row, _facts(others_at_service_points=(EARLIER,)), ADMIN, TODAY,
                     "STOPUPL")
    # A canceled SA covers nothing, whatever its dates; another service type is not counted.
    canceled = _link("SA-9", "70", dt.date(2023, 1, 1))
    electric = _link("SA-8", "40", dt.date(2023, 1, 1), LATER, sa_type="E-RES")
    assert fast_stop(row, _facts(others_at_service_points=(EARLIER, canceled, electric)),
                     ADMIN, TODAY, "STOPUPL")
    # The SA's own link stopped earlier at another service point is its own history.
    own_old = _link("SA-1", "20", SINCE, SINCE + dt.timedelta(days=30), sp_id="SP-OLD",
                    link_id="L-OLD")
    assert fast_stop(row, _facts(links=(own_old, _link()), others_at_service_points=(
        _link("SA-7", "40", SINCE + dt.timedelta(days=30), sp_id="SP-OLD"),)), ADMIN, TODAY,
        "STOPUPL")
    # Once stopped on the row's date, the SA no longer meets a later tenant of the past.
    after = _link("SA-6", "40", LATER, LATER + dt.timedelta(days=10))
    assert fast_stop(row, _facts(others_at_service_points=(after,)), ADMIN, TODAY, "STOPUPL")
    before_stop = _link("SA-6", "40", LATER - dt.timedelta(days=1), LATER)
    assert not fast_stop(row, _facts(others_at_service_points=(before_stop,)), ADMIN, TODAY,
                         "STOPUPL")


def test_step_1_1_rows_sharing_an_account_or_sa_in_a_chunk_go_the_general_way() -> None:
    rows = [_row(1, "A-1", ("SA-1",)), _row(2, "A-2", ("SA-2",)), _row(3, "A-2", ("SA-3",)),
            _row(4, "A-4", ("SA-4",)), _row(5, "A-5", ("SA-4",)), _row(6, "A-6", ("SA-6",))]
    facts = {sa: _facts(sa, account) for sa, account in (
        ("SA-1", "A-1"), ("SA-2", "A-2"), ("SA-3", "A-2"), ("SA-4", "A-4"))}
    chosen = fast_stops(rows, facts, ADMIN, TODAY, "STOPUPL")
    # Rows 2 and 3 share an account, 4 and 5 an SA; row 6's SA was not found.
    assert list(chosen) == ["1"]
    assert chosen["1"] == (rows[0], facts["SA-1"])
