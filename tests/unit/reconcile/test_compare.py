"""Comparing what CCB says MDM should hold with what MDM holds: one test per drift kind, with
usage subscriptions built by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings

from sync.config.admin import load_admin_config
from sync.mapping.messages import SaSyncMessage
from sync.mapping.sa_to_us import usage_subscription_command
from sync.mdm.apply import candidate_for
from sync.mdm.model import UsageSubscription, UsSpLink, UsStatus
from sync.reconcile.compare import (
    DriftKind,
    ExpectedUsageSubscription,
    compare,
    expected_from_message,
)
from tests.unit.mapping.builders import sa_message
from tests.unit.mapping.strategies import sa_messages

ADMIN = load_admin_config()
START = dt.date(2025, 3, 1)
STOP = dt.date(2025, 3, 14)


def expected(sa_id: str = "SA-1", **fields: Any) -> ExpectedUsageSubscription:
    found = expected_from_message(sa_message(sa_id, **fields))
    assert found is not None
    return found


def held(sa_id: str = "SA-1", **fields: Any) -> UsageSubscription:
    """The US MDM holds when it applied ``sa_message(sa_id)`` as version 1, fields overridden."""
    values: dict[str, Any] = {
        "external_id": sa_id, "external_account_id": "ACCT-1", "us_type": "E-RES-US",
        "status": UsStatus.ACTIVE, "start_date": START, "end_date": None,
        "time_zone": "America/Chicago", "main_contact_id": "PER-1", "division": "MAIN",
        "sp_links": (UsSpLink(sp_id="SP-1", start=START),), "last_applied_version": 1,
    }
    values.update(fields)
    return UsageSubscription(**values)


def test_the_same_us_on_both_sides_agrees() -> None:
    result = compare([expected()], [held()])
    assert result.agree
    assert result.drifts == ()
    assert result.summary() == ("CCB and MDM agree: 1 SAs, 1 usage subscriptions, "
                                "0 differences")
    assert set(result.counts().values()) == {0}


def test_missing_in_mdm() -> None:
    result = compare([expected("SA-1"), expected("SA-2")], [held("SA-1")])
    [drift] = result.drifts
    assert (drift.kind, drift.entity_id) == (DriftKind.MISSING_IN_MDM, "SA-2")
    assert "no usage subscription for SA SA-2" in drift.message
    assert result.counts()["MISSING_IN_MDM"] == 1
    assert not result.agree
    assert result.summary().startswith("CCB and MDM disagree: 2 SAs, 1 usage subscriptions")


def test_extra_in_mdm() -> None:
    result = compare([expected("SA-1")], [held("SA-1"), held("SA-9")])
    [drift] = result.drifts
    assert (drift.kind, drift.entity_id) == (DriftKind.EXTRA_IN_MDM, "SA-9")
    assert result.counts()["EXTRA_IN_MDM"] == 1


@pytest.mark.parametrize(("mdm_version", "word"), [(1, "behind"), (5, "ahead of")])
def test_stale_version(mdm_version: int, word: str) -> None:
    result = compare([expected(version=3)], [held(last_applied_version=mdm_version)])
    [drift] = result.drifts
    assert drift.kind is DriftKind.STALE_VERSION
    assert (drift.field, drift.ccb_value, drift.mdm_value) == ("lastAppliedVersion", 3,
                                                               mdm_version)
    assert word in drift.message


def test_an_unknown_expected_version_is_not_compared() -> None:
    assert compare([replace(expected(version=3), version=None)], [held()]).agree


def test_status_mismatch_uses_the_sa_status_mapping() -> None:
    """SA 10 (pending start) means PENDING; an ACTIVE US disagrees, a PENDING one agrees."""
    want = expected(sa_status="10")
    assert compare([want], [held(status=UsStatus.PENDING)]).agree
    [drift] = compare([want], [held(status=UsStatus.ACTIVE)]).drifts
    assert drift.kind is DriftKind.STATUS_MISMATCH
    assert (drift.field, drift.ccb_value, drift.mdm_value) == ("status", "PENDING", "ACTIVE")
    assert "SA status 10" in drift.message


def test_pending_stop_is_active_in_mdm() -> None:
    assert compare([expected(sa_status="30", end=STOP)],
                   [held(end_date=STOP, sp_links=(UsSpLink(sp_id="SP-1", start=START,
                                                           stop=STOP),))]).agree


@pytest.mark.parametrize(("field", "mdm_fields", "ccb_value", "mdm_value"), [
    ("endDate", {"end_date": STOP}, None, "2025-03-14"),
    ("startDate", {"start_date": dt.date(2025, 3, 2)}, "2025-03-01", "2025-03-02"),
    ("externalAccountId", {"external_account_id": "ACCT-2"}, "ACCT-1", "ACCT-2"),
    ("mainContactId", {"main_contact_id": "PER-2"}, "PER-1", "PER-2"),
    ("division", {"division": "NORTH"}, "MAIN", "NORTH"),
    ("masterExternalId", {"master_external_id": "SA-0"}, None, "SA-0"),
    ("usType", {"us_type": "G-RES-US"}, "E-RES-US", "G-RES-US"),
])
def test_field_difference(field: str, mdm_fields: dict[str, Any], ccb_value: object,
                          mdm_value: object) -> None:
    [drift] = compare([expected()], [held(**mdm_fields)]).drifts
    assert drift.kind is DriftKind.FIELD_DIFFERENCE
    assert (drift.entity_id, drift.field) == ("SA-1", field)
    assert (drift.ccb_value, drift.mdm_value) == (ccb_value, mdm_value)


def test_link_field_difference_names_the_link() -> None:
    [drift] = compare([expected()], [held(sp_links=(
        UsSpLink(sp_id="SP-1", start=START, stop=STOP),))]).drifts
    assert drift.kind is DriftKind.FIELD_DIFFERENCE
    assert (drift.field, drift.ccb_value, drift.mdm_value) == ("spLinks[0].stop", None,
                                                               "2025-03-14")


def test_a_different_number_of_links_is_one_drift() -> None:
    [drift] = compare([expected(sp_ids=("SP-1", "SP-2"))], [held()]).drifts
    assert (drift.kind, drift.field) == (DriftKind.FIELD_DIFFERENCE, "spLinks")
    assert drift.ccb_value == "[SP-1 2025-03-01 to open, SP-2 2025-03-01 to open]"
    assert drift.mdm_value == "[SP-1 2025-03-01 to open]"


def test_link_order_does_not_matter() -> None:
    links = (UsSpLink(sp_id="SP-2", start=START), UsSpLink(sp_id="SP-1", start=START))
    assert compare([expected(sp_ids=("SP-1", "SP-2"))], [held(sp_links=links)]).agree


def test_a_blank_time_zone_is_mdm_s_to_default() -> None:
    """D1-DEFTIMZON fills a blank zone: only a zone CCB sends is compared."""
    assert compare([expected(time_zone=None)], [held(time_zone="America/Chicago")]).agree
    [drift] = compare([expected(time_zone="America/New_York")], [held()]).drifts
    assert (drift.field, drift.ccb_value) == ("timeZone", "America/New_York")


def test_every_drift_of_one_us_is_reported_and_counted() -> None:
    result = compare([expected(version=4, sa_status="40", end=STOP)],
                     [held(last_applied_version=3, division="NORTH")])
    kinds = [drift.kind for drift in result.drifts]
    assert kinds == [DriftKind.STALE_VERSION, DriftKind.STATUS_MISMATCH,
                     DriftKind.FIELD_DIFFERENCE, DriftKind.FIELD_DIFFERENCE,
                     DriftKind.FIELD_DIFFERENCE]
    assert {drift.field for drift in result.drifts[2:]} == {"endDate", "division",
                                                            "spLinks[0].stop"}
    counts = result.counts()
    assert (counts["STALE_VERSION"], counts["FIELD_DIFFERENCE"]) == (1, 3)
    document = result.to_dict()
    assert document["agree"] is False
    assert document["drifts"][0] == {
        "kind": "STALE_VERSION", "entity_id": "SA-1", "field": "lastAppliedVersion", "ccb": 4,
        "mdm": 3, "message": "MDM applied version 3, behind CCB's version 4"}


def test_an_sa_type_without_a_us_type_expects_nothing() -> None:
    assert expected_from_message(sa_message(us_type=None)) is None


def test_the_same_id_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'SA-1' appears twice"):
        compare([expected(), expected()], [])


@settings(max_examples=60)
@given(sa_messages())
def test_what_mdm_builds_from_a_message_agrees_with_what_it_asks_for(
        message: SaSyncMessage) -> None:
    """Expected (from the message) and MDM's candidate (from the same message) never drift."""
    command = usage_subscription_command(message)
    if command is None:
        assert expected_from_message(message) is None
        return
    us = candidate_for(command, ADMIN.us_types["E-RES-US"])
    assert compare([ExpectedUsageSubscription.from_command(command)], [us]).drifts == ()
