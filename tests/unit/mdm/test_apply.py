"""Applying commands to MDM: new US, updates, status changes, duplicates, stale versions and
rejections (SPEC.md section 5; process steps 1.5, 4.5, 7.5)."""

from __future__ import annotations

import pytest

from sync.config.admin import AdminConfig
from sync.mdm.apply import decide, decide_contact, decide_service_point
from sync.mdm.commands import UpsertContact, UpsertServicePoint
from sync.mdm.context import ValidationContext
from sync.mdm.decision import Outcome
from sync.mdm.memory import InMemoryMdmStore
from sync.mdm.model import (
    MeasuringComponent,
    UsageGroupAssignment,
    UsStatus,
)
from sync.mdm.ports import ConsumedPosition
from tests.unit.mdm.builders import START, D, sp_copy, us_command


@pytest.fixture
def store(admin: AdminConfig) -> InMemoryMdmStore:
    return InMemoryMdmStore(admin)


def test_a_new_us_is_applied_with_derived_status_zone_groups_and_info(
        store: InMemoryMdmStore) -> None:
    decision = store.apply(us_command(sa_status="10", version=3))
    assert decision.outcome is Outcome.APPLIED
    assert decision.stored_version is None
    us = store.get_us("SA-1")
    assert us is not None
    assert us == decision.usage_subscription
    assert us.status is UsStatus.PENDING
    assert us.time_zone == "America/Chicago"  # D1-DEFTIMZON
    # The US type's usage groups touching the period from 2025-03-01 on: the TOU group only.
    assert us.usage_groups == (UsageGroupAssignment(group="E-RES-TOU", start=D(2024, 1, 1)),)
    assert us.last_applied_version == 3
    assert us.info == "E-RES-US PENDING SA-1, 1 SP, 2025-03-01 to open"
    assert store.get_service_point("SP-1") == sp_copy("SP-1")


def test_step_1_5_landlord_pending_start_us_is_created_beside_the_stopping_tenant(
        store: InMemoryMdmStore) -> None:
    """Step 1.5: the tenant's US gets its end date; the landlord's pending start US takes the SP
    from that date (back-to-back, so the cross-US check passes)."""
    assert store.apply(us_command("SA-TEN", start=D(2024, 1, 1))).applied
    stop = us_command("SA-TEN", version=2, sa_status="30", start=D(2024, 1, 1), end=D(2025, 6, 1))
    assert store.apply(stop).applied
    landlord = us_command("SA-LL", sa_status="10", start=D(2025, 6, 1),
                          external_account_id="ACCT-LL")
    decision = store.apply(landlord)
    assert decision.outcome is Outcome.APPLIED, decision.summary()
    assert [us.external_id for us in store.list_us(sp_id="SP-1")] == ["SA-LL", "SA-TEN"]
    assert [us.external_id for us in store.list_us(status=UsStatus.PENDING)] == ["SA-LL"]


def test_an_update_replaces_the_state_and_reports_the_status_change(
        store: InMemoryMdmStore) -> None:
    store.apply(us_command(sa_status="20"))
    decision = store.apply(us_command(version=2, sa_status="40", end=D(2025, 7, 1)))
    assert decision.outcome is Outcome.APPLIED
    assert decision.previous_status is UsStatus.ACTIVE
    us = store.get_us("SA-1")
    assert us is not None
    assert (us.status, us.end_date, us.last_applied_version) == (UsStatus.INACTIVE,
                                                                 D(2025, 7, 1), 2)
    assert us.sp_links[0].stop == D(2025, 7, 1)
    assert decision.summary() == "usage_subscription SA-1 version 2: applied (ACTIVE -> INACTIVE)"


@pytest.mark.parametrize(("sa_statuses", "expected"), [
    (("10", "20"), UsStatus.ACTIVE),      # activation
    (("20", "30"), UsStatus.ACTIVE),      # pending stop still measures usage
    (("30", "20"), UsStatus.ACTIVE),      # pending stop canceled
    (("30", "40"), UsStatus.INACTIVE),    # stopped
    (("40", "60"), UsStatus.INACTIVE),    # closed
    (("40", "20"), UsStatus.ACTIVE),      # reinstated (step 7.8)
    (("20", "70"), UsStatus.INACTIVE),    # canceled
])
def test_status_follows_the_sa_status_mapping(store: InMemoryMdmStore,
                                              sa_statuses: tuple[str, str],
                                              expected: UsStatus) -> None:
    first, second = sa_statuses
    end = D(2025, 9, 1) if second in {"40", "60"} else None
    store.apply(us_command(sa_status=first, end=D(2025, 9, 1) if first == "40" else None))
    decision = store.apply(us_command(version=2, sa_status=second, end=end))
    assert decision.outcome is Outcome.APPLIED, decision.summary()
    us = store.get_us("SA-1")
    assert us is not None
    assert us.status is expected


def test_step_4_5_landlord_pending_start_us_is_deactivated_when_the_start_is_canceled(
        store: InMemoryMdmStore) -> None:
    """Step 4.5: the landlord's pending start is canceled (SA 70) on its start date; the US
    becomes inactive even though its links are now empty."""
    store.apply(us_command("SA-LL", sa_status="10", start=D(2025, 6, 1)))
    canceled = us_command("SA-LL", version=2, sa_status="70", start=D(2025, 6, 1),
                          end=D(2025, 6, 1))
    decision = store.apply(canceled)
    assert decision.outcome is Outcome.APPLIED, decision.summary()
    us = store.get_us("SA-LL")
    assert us is not None
    assert us.status is UsStatus.INACTIVE
    assert us.info == "E-RES-US INACTIVE SA-LL, 1 SP, 2025-06-01 to 2025-06-01"


def test_step_7_5_us_is_activated_again_when_the_closed_sa_is_reactivated(
        store: InMemoryMdmStore) -> None:
    """Step 7.5: a new FT after close reactivates the SA (60 -> 50); the US is active again."""
    end = D(2025, 9, 1)
    store.apply(us_command(sa_status="20"))
    store.apply(us_command(version=2, sa_status="40", end=end))
    store.apply(us_command(version=3, sa_status="60", end=end))
    assert store.get_us("SA-1").status is UsStatus.INACTIVE  # type: ignore[union-attr]
    decision = store.apply(us_command(version=4, sa_status="50", end=end))
    assert decision.outcome is Outcome.APPLIED
    assert decision.previous_status is UsStatus.INACTIVE
    assert store.get_us("SA-1").status is UsStatus.ACTIVE  # type: ignore[union-attr]


def test_the_same_version_again_is_a_duplicate_and_changes_nothing(
        store: InMemoryMdmStore) -> None:
    store.apply(us_command(version=5))
    before = store.get_us("SA-1")
    decision = store.apply(us_command(version=5, end=D(2025, 9, 1), sa_status="40"))
    assert decision.outcome is Outcome.DUPLICATE
    assert decision.stored_version == 5
    assert decision.summary() == ("usage_subscription SA-1 version 5: duplicate "
                                  "(version 5 already applied)")
    assert store.get_us("SA-1") == before


def test_an_older_version_arriving_late_is_a_duplicate_and_changes_nothing(
        store: InMemoryMdmStore) -> None:
    store.apply(us_command(version=7, sa_status="40", end=D(2025, 9, 1)))
    before = store.get_us("SA-1")
    decision = store.apply(us_command(version=6, sa_status="20"))
    assert decision.outcome is Outcome.DUPLICATE
    assert store.get_us("SA-1") == before


def test_a_rejected_update_changes_nothing_and_lists_every_error(
        store: InMemoryMdmStore) -> None:
    store.apply(us_command(version=1))
    before_us, before_sp = store.get_us("SA-1"), store.get_service_point("SP-1")
    bad = us_command(version=2, time_zone="Europe/Paris", master_external_id="SA-NOPE",
                     service_points=(sp_copy(version=2, mc_class="therm"),))
    decision = store.apply(bad)
    assert decision.outcome is Outcome.REJECTED
    assert [(e.code, e.path) for e in decision.errors] == [
        ("D2-VALUSTMZN", "timeZone"),
        ("D2-VAL-SUBUS", "masterExternalId"),
        ("D2-VALUSMC", "spLinks[0].spId"),
    ]
    assert decision.usage_subscription is None
    assert decision.service_points == ()
    assert store.get_us("SA-1") == before_us
    assert store.get_service_point("SP-1") == before_sp
    # Not applied, so the same version is not a duplicate: it can be re-sent once fixed.
    assert store.apply(us_command(version=2)).outcome is Outcome.APPLIED


def test_an_unknown_us_type_is_rejected_on_us_type(store: InMemoryMdmStore) -> None:
    decision = store.apply(us_command(us_type="X-US"))
    assert decision.outcome is Outcome.REJECTED
    assert [(e.code, e.path) for e in decision.errors] == [("MDM-APPLY", "usType")]
    assert "unknown US type X-US" in decision.errors[0].message
    assert store.get_us("SA-1") is None
    assert store.get_service_point("SP-1") is None


def test_structural_errors_are_reported_with_the_validations(store: InMemoryMdmStore) -> None:
    store.apply(us_command(sa_status="20"))
    bad = us_command(version=2, sa_status="10", us_type="G-RES-US", end=D(2025, 1, 1),
                     sp_ids=("SP-1", "SP-9"), carry=False)
    decision = store.apply(bad)
    paths = [(e.code, e.path) for e in decision.errors]
    assert ("MDM-APPLY", "usType") in paths  # the US type cannot change
    assert ("MDM-APPLY", "endDate") in paths
    assert ("MDM-APPLY", "status") in paths  # ACTIVE cannot return to PENDING
    assert ("MDM-APPLY", "spLinks[1].spId") in paths  # SP-9 unknown to MDM
    assert ("D2-USSPDTVAL", "spLinks[0].spId") in paths  # E-RES SP on a gas US


def test_a_carried_sp_copy_never_replaces_a_newer_one(store: InMemoryMdmStore) -> None:
    command = UpsertServicePoint(sp_id="SP-1", sp_type="E-RES", version=4, meter_id="M-NEW",
                                 measuring_components=(MeasuringComponent(mc_id="X",
                                                                          mc_class="kWh"),))
    store.apply(command)
    newer = command.service_point_copy()
    decision = store.apply(us_command(service_points=(sp_copy(version=2, mc_class="therm"),)))
    assert decision.outcome is Outcome.APPLIED  # validated against the newer kWh copy
    assert decision.service_points == ()
    assert store.get_service_point("SP-1") == newer


def test_the_cross_us_check_uses_the_stored_subscriptions(store: InMemoryMdmStore) -> None:
    store.apply(us_command("SA-A"))
    decision = store.apply(us_command("SA-B", start=D(2025, 5, 1)))
    assert decision.outcome is Outcome.REJECTED
    assert [(e.code, e.path) for e in decision.errors] == [("D2-USSPDTVAL", "spLinks[0].spId")]


def test_sub_us_counts_come_from_the_stored_subscriptions(store: InMemoryMdmStore) -> None:
    store.apply(us_command("SA-M", start=D(2024, 1, 1)))
    for index in range(3):
        sub = us_command(f"SA-S{index}", master_external_id="SA-M", sp_ids=(f"SP-S{index}",))
        assert store.apply(sub).applied
    fourth = store.apply(us_command("SA-S3", master_external_id="SA-M", sp_ids=("SP-S3",)))
    assert [(e.code, e.path) for e in fourth.errors] == [("D2-VAL-SUBUS", "masterExternalId")]
    # A sub re-sent with a new version does not count itself.
    assert store.apply(us_command("SA-S0", version=2, master_external_id="SA-M",
                                  sp_ids=("SP-S0",))).applied


def test_the_position_is_recorded_whatever_the_outcome(store: InMemoryMdmStore) -> None:
    store.apply(us_command(), ConsumedPosition("sync", 0, 10))
    store.apply(us_command(), ConsumedPosition("sync", 0, 11))  # duplicate
    store.apply(us_command("SA-2", us_type="X"), ConsumedPosition("sync", 2, 4))  # rejected
    assert store.last_positions("sync") == {0: 11, 2: 4}
    assert store.last_positions("other") == {}


def test_decide_is_pure_and_needs_no_store(admin: AdminConfig) -> None:
    context = ValidationContext(admin=admin)
    decision = decide(us_command(start=START), None, context)
    assert decision.outcome is Outcome.APPLIED
    assert decision.service_points == (sp_copy(),)


def test_service_point_commands_are_versioned_and_validated(admin: AdminConfig) -> None:
    good = UpsertServicePoint(sp_id="SP-1", sp_type="E-RES", time_zone="America/Chicago",
                              version=2)
    assert decide_service_point(good, None, admin).outcome is Outcome.APPLIED
    assert decide_service_point(good, sp_copy(version=2), admin).outcome is Outcome.DUPLICATE
    bad = UpsertServicePoint(sp_id="SP-1", sp_type="NOPE", time_zone="Nowhere/Land", version=3,
                             measuring_components=(MeasuringComponent(mc_id="A", mc_class="kWh"),
                                                   MeasuringComponent(mc_id="A", mc_class="kWh")))
    decision = decide_service_point(bad, sp_copy(version=2), admin)
    assert [(e.code, e.path) for e in decision.errors] == [
        ("MDM-APPLY", "spType"), ("MDM-APPLY", "timeZone"),
        ("MDM-APPLY", "measuringComponents[1].mcId")]


def test_contact_commands_are_versioned(store: InMemoryMdmStore) -> None:
    first = UpsertContact(contact_id="PER-1", name="SMITH,JANE", version=1)
    assert store.apply(first).outcome is Outcome.APPLIED
    assert store.apply(first).outcome is Outcome.DUPLICATE
    renamed = first.model_copy(update={"name": "DOE,JANE", "version": 2})
    assert store.apply(renamed).outcome is Outcome.APPLIED
    assert store.get_contact("PER-1").name == "DOE,JANE"  # type: ignore[union-attr]
    blank = decide_contact(first.model_copy(update={"name": " ", "version": 3}), None)
    assert [(e.code, e.path) for e in blank.errors] == [("MDM-APPLY", "name")]
