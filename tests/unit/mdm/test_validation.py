"""Usage subscription validations (SPEC.md section 5): one passing and one failing case each,
with the algorithm code and field path of every failure."""

from __future__ import annotations

import pytest

from sync.algorithms import CATALOGUE, Spot, registry
from sync.config.admin import AdminConfig
from sync.mdm import checks
from sync.mdm.model import (
    FactorOverride,
    MeasuringComponent,
    UsageGroupAssignment,
    UsSpLink,
    UsStatus,
    ValidationError,
)
from sync.mdm.validation import (
    default_time_zone,
    describe_usage_subscription,
    validate_usage_subscription,
)
from tests.unit.mdm.builders import (
    BASE_ZONE,
    START,
    D,
    context,
    default_admin,
    sp_copy,
    subscription,
)


def codes_and_paths(errors: list[ValidationError] | tuple[ValidationError, ...]
                    ) -> list[tuple[str, str]]:
    return [(error.code, error.path) for error in errors]


def test_importing_validation_binds_every_us_validation_and_info_code() -> None:
    unbound = [(spot, code) for spot, code in registry.unbound()
               if spot in (Spot.US_VALIDATION, Spot.US_INFO)]
    assert unbound == []
    for code in CATALOGUE[Spot.US_VALIDATION]:
        assert callable(registry.get(Spot.US_VALIDATION, code))
    assert registry.get(Spot.US_INFO, "D2-USINFO") is describe_usage_subscription


# --- D1-DEFTIMZON --------------------------------------------------------------------------


def test_d1_deftimzon_defaults_a_blank_zone_to_the_base_zone(admin: AdminConfig) -> None:
    defaulted = default_time_zone(subscription(time_zone=None), context(admin))
    assert defaulted.time_zone == BASE_ZONE


def test_d1_deftimzon_keeps_a_given_zone(admin: AdminConfig) -> None:
    given = subscription(time_zone="America/Denver")
    assert default_time_zone(given, context(admin)).time_zone == "America/Denver"


def test_d1_deftimzon_takes_the_sps_zone_under_multi_time_zone() -> None:
    admin = default_admin(multi_time_zone=True)
    sps = (sp_copy("SP-1", time_zone="America/Denver"), sp_copy("SP-2", time_zone="America/Denver"))
    candidate = subscription(time_zone="", sp_ids=("SP-1", "SP-2"))
    assert default_time_zone(candidate, context(admin, *sps)).time_zone == "America/Denver"


def test_d1_deftimzon_falls_back_to_the_base_zone_when_sps_disagree() -> None:
    admin = default_admin(multi_time_zone=True)
    sps = (sp_copy("SP-1", time_zone="America/Denver"), sp_copy("SP-2", time_zone="UTC"))
    candidate = subscription(time_zone=None, sp_ids=("SP-1", "SP-2"))
    assert default_time_zone(candidate, context(admin, *sps)).time_zone == BASE_ZONE


# --- D2-VALUSTMZN --------------------------------------------------------------------------


def test_d2_valustmzn_passes_the_base_zone(admin: AdminConfig) -> None:
    assert checks.validate_time_zone(subscription(), context(admin)) == []


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", None])
def test_d2_valustmzn_rejects_an_unknown_or_blank_zone(admin: AdminConfig,
                                                       zone: str | None) -> None:
    errors = checks.validate_time_zone(subscription(time_zone=zone), context(admin))
    assert codes_and_paths(errors) == [("D2-VALUSTMZN", "timeZone")]


def test_d2_valustmzn_rejects_another_zone_when_multi_time_zone_is_off(
        admin: AdminConfig) -> None:
    errors = checks.validate_time_zone(subscription(time_zone="America/Denver"), context(admin))
    assert codes_and_paths(errors) == [("D2-VALUSTMZN", "timeZone")]
    assert "base time zone America/Chicago" in errors[0].message


def test_d2_valustmzn_under_multi_time_zone_wants_the_sps_zone() -> None:
    admin = default_admin(multi_time_zone=True)
    sps = (sp_copy("SP-1", time_zone="America/Denver"), sp_copy("SP-2", time_zone="UTC"))
    candidate = subscription(time_zone="America/Denver", sp_ids=("SP-1", "SP-2"))
    errors = checks.validate_time_zone(candidate, context(admin, *sps))
    assert codes_and_paths(errors) == [("D2-VALUSTMZN", "spLinks[1].spId")]
    assert "SP-2 is in time zone UTC" in errors[0].message
    same = (sps[0], sp_copy("SP-2", time_zone=None))
    assert checks.validate_time_zone(candidate, context(admin, *same)) == []


# --- D2-USSPDTVAL --------------------------------------------------------------------------


def test_d2_usspdtval_passes_links_inside_the_period(admin: AdminConfig) -> None:
    candidate = subscription(end=D(2025, 9, 1))
    assert checks.validate_sp_link_dates(candidate, context(admin)) == []


def test_d2_usspdtval_reports_links_outside_the_us_period(admin: AdminConfig) -> None:
    candidate = subscription(end=D(2025, 9, 1), sp_links=(
        UsSpLink(sp_id="SP-1", start=D(2025, 2, 1), stop=D(2025, 5, 1)),
        UsSpLink(sp_id="SP-1", start=D(2025, 5, 1), stop=None),
    ))
    errors = checks.validate_sp_link_dates(candidate, context(admin))
    assert codes_and_paths(errors) == [("D2-USSPDTVAL", "spLinks[0].start"),
                                       ("D2-USSPDTVAL", "spLinks[1].stop")]


def test_d2_usspdtval_reports_a_stop_before_the_start(admin: AdminConfig) -> None:
    candidate = subscription(sp_links=(
        UsSpLink(sp_id="SP-1", start=D(2025, 4, 1), stop=D(2025, 3, 15)),))
    errors = checks.validate_sp_link_dates(candidate, context(admin))
    assert codes_and_paths(errors) == [("D2-USSPDTVAL", "spLinks[0].stop")]


def test_d2_usspdtval_accepts_an_empty_link_of_a_start_canceled_on_its_start_date(
        admin: AdminConfig) -> None:
    candidate = subscription(status=UsStatus.INACTIVE, end=START,
                             sp_links=(UsSpLink(sp_id="SP-1", start=START, stop=START),))
    assert checks.validate_sp_link_dates(candidate, context(admin)) == []


def test_d2_usspdtval_reports_overlapping_links_of_one_sp(admin: AdminConfig) -> None:
    candidate = subscription(sp_links=(
        UsSpLink(sp_id="SP-1", start=START, stop=D(2025, 6, 1)),
        UsSpLink(sp_id="SP-1", start=D(2025, 5, 1)),
    ))
    errors = checks.validate_sp_link_dates(candidate, context(admin))
    assert codes_and_paths(errors) == [("D2-USSPDTVAL", "spLinks[1].start")]
    back_to_back = subscription(sp_links=(
        UsSpLink(sp_id="SP-1", start=START, stop=D(2025, 6, 1)),
        UsSpLink(sp_id="SP-1", start=D(2025, 6, 1)),
    ))
    assert checks.validate_sp_link_dates(back_to_back, context(admin)) == []


def test_d2_usspdtval_reports_an_sp_type_the_us_type_does_not_take(admin: AdminConfig) -> None:
    errors = checks.validate_sp_link_dates(subscription(),
                                           context(admin, sp_copy(sp_type="G-RES")))
    assert codes_and_paths(errors) == [("D2-USSPDTVAL", "spLinks[0].spId")]
    assert "SP type G-RES" in errors[0].message


def test_d2_usspdtval_reports_an_sp_in_another_us_of_the_same_type_over_the_same_days(
        admin: AdminConfig) -> None:
    tenant = subscription("SA-TENANT", start=D(2024, 1, 1))
    errors = checks.validate_sp_link_dates(subscription("SA-NEW"),
                                           context(admin, sharing=(tenant,)))
    assert codes_and_paths(errors) == [("D2-USSPDTVAL", "spLinks[0].spId")]
    assert "SA-TENANT" in errors[0].message


def test_d2_usspdtval_lets_back_to_back_tenant_and_landlord_share_an_sp(
        admin: AdminConfig) -> None:
    """Step 4.7: the landlord starts on the tenant's stop date; stop dates are exclusive."""
    tenant = subscription("SA-TENANT", start=D(2024, 1, 1), end=START)
    landlord = subscription("SA-LANDLORD", status=UsStatus.PENDING, start=START)
    assert checks.validate_sp_link_dates(landlord, context(admin, sharing=(tenant,))) == []
    assert checks.validate_sp_link_dates(tenant, context(admin, sharing=(landlord,))) == []


@pytest.mark.parametrize("other_fields", [
    {"status": UsStatus.INACTIVE},
    {"us_type": "G-RES-US"},
    {"master_external_id": "SA-1"},
])
def test_d2_usspdtval_ignores_inactive_other_type_and_sub_subscriptions(
        admin: AdminConfig, other_fields: dict[str, object]) -> None:
    other = subscription("SA-OTHER", **other_fields)
    assert checks.validate_sp_link_dates(subscription("SA-1"),
                                         context(admin, sharing=(other,))) == []


def test_d2_usspdtval_does_not_check_sharing_for_an_inactive_candidate(
        admin: AdminConfig) -> None:
    """Step 4.5: deactivating a landlord pending start must not be blocked by the tenant."""
    tenant = subscription("SA-TENANT")
    canceled = subscription("SA-LANDLORD", status=UsStatus.INACTIVE)
    assert checks.validate_sp_link_dates(canceled, context(admin, sharing=(tenant,))) == []


# --- D2-USUGDTVAL --------------------------------------------------------------------------


def test_d2_usugdtval_passes_a_group_in_effect_at_the_start(admin: AdminConfig) -> None:
    assert checks.validate_usage_group_dates(subscription(), context(admin)) == []


def test_d2_usugdtval_reports_an_unconfigured_group_and_no_group_at_the_start(
        admin: AdminConfig) -> None:
    candidate = subscription(usage_groups=(
        UsageGroupAssignment(group="G-RES-STD", start=D(2025, 6, 1)),))
    errors = checks.validate_usage_group_dates(candidate, context(admin))
    assert codes_and_paths(errors) == [("D2-USUGDTVAL", "usageGroups[0].group"),
                                       ("D2-USUGDTVAL", "usageGroups")]


def test_d2_usugdtval_reports_groups_out_of_order_overlapping_or_inverted(
        admin: AdminConfig) -> None:
    legacy = UsageGroupAssignment(group="E-RES-LEGACY", start=D(2020, 1, 1), end=D(2026, 1, 1))
    candidate = subscription(usage_groups=(
        legacy,
        UsageGroupAssignment(group="E-RES-TOU", start=D(2025, 1, 1)),  # overlaps legacy
        UsageGroupAssignment(group="E-RES-TOU", start=D(2019, 1, 1), end=D(2018, 1, 1)),
    ))
    errors = checks.validate_usage_group_dates(candidate, context(admin))
    assert codes_and_paths(errors) == [("D2-USUGDTVAL", "usageGroups[1].start"),
                                       ("D2-USUGDTVAL", "usageGroups[2].end"),
                                       ("D2-USUGDTVAL", "usageGroups[2].start")]


# --- D2-USFOVAL ----------------------------------------------------------------------------


def test_d2_usfoval_passes_allowed_factors_inside_the_period(admin: AdminConfig) -> None:
    candidate = subscription(end=D(2026, 1, 1), factor_overrides=(
        FactorOverride(factor="LOSS-FACTOR", value=1.02, start=START, end=D(2025, 6, 1)),
        FactorOverride(factor="LOSS-FACTOR", value=1.03, start=D(2025, 6, 1), end=D(2026, 1, 1)),
        FactorOverride(factor="CT-MULTIPLIER", value=40, start=START, end=D(2026, 1, 1)),
    ))
    assert checks.validate_factor_overrides(candidate, context(admin)) == []


def test_d2_usfoval_reports_unknown_factor_inverted_outside_and_overlapping(
        admin: AdminConfig) -> None:
    candidate = subscription(end=D(2026, 1, 1), factor_overrides=(
        FactorOverride(factor="BTU-FACTOR", value=1.0, start=START, end=D(2025, 6, 1)),
        FactorOverride(factor="LOSS-FACTOR", value=1.0, start=D(2025, 8, 1), end=D(2025, 7, 1)),
        FactorOverride(factor="LOSS-FACTOR", value=1.0, start=D(2025, 1, 1), end=D(2025, 4, 1)),
        FactorOverride(factor="CT-MULTIPLIER", value=1.0, start=START, end=None),
        FactorOverride(factor="CT-MULTIPLIER", value=1.0, start=D(2025, 5, 1),
                       end=D(2025, 9, 1)),
    ))
    errors = checks.validate_factor_overrides(candidate, context(admin))
    assert codes_and_paths(errors) == [
        ("D2-USFOVAL", "factorOverrides[0].factor"),
        ("D2-USFOVAL", "factorOverrides[1].end"),
        ("D2-USFOVAL", "factorOverrides[2].start"),
        ("D2-USFOVAL", "factorOverrides[3].end"),
        ("D2-USFOVAL", "factorOverrides[4].start"),
    ]


# --- D2-VAL-SUBUS --------------------------------------------------------------------------


def test_d2_val_subus_passes_a_sub_inside_its_master(admin: AdminConfig) -> None:
    master = subscription("SA-MASTER", start=D(2024, 1, 1))
    sub = subscription("SA-SUB", master_external_id="SA-MASTER")
    assert checks.validate_sub_subscription(sub, context(admin, master=master,
                                                         master_other_subs=2)) == []


def test_d2_val_subus_reports_a_missing_master(admin: AdminConfig) -> None:
    sub = subscription("SA-SUB", master_external_id="SA-MASTER")
    errors = checks.validate_sub_subscription(sub, context(admin))
    assert codes_and_paths(errors) == [("D2-VAL-SUBUS", "masterExternalId")]
    assert "SA-MASTER does not exist" in errors[0].message


def test_d2_val_subus_reports_nested_uncovered_and_over_the_limit(admin: AdminConfig) -> None:
    master = subscription("SA-MASTER", start=D(2025, 4, 1), end=D(2025, 12, 1),
                          master_external_id="SA-TOP")
    sub = subscription("SA-SUB", master_external_id="SA-MASTER")
    errors = checks.validate_sub_subscription(sub, context(admin, master=master,
                                                           master_other_subs=3))
    messages = [error.message for error in errors]
    assert codes_and_paths(errors) == [("D2-VAL-SUBUS", "masterExternalId")] * 3
    assert "itself a sub of SA-TOP" in messages[0]
    assert "does not cover" in messages[1]
    assert "allows at most 3" in messages[2]


def test_d2_val_subus_reports_a_us_naming_itself_as_master(admin: AdminConfig) -> None:
    errors = checks.validate_sub_subscription(subscription(master_external_id="SA-1"),
                                              context(admin))
    assert codes_and_paths(errors) == [("D2-VAL-SUBUS", "masterExternalId")]


# --- D2-VALUSMC ----------------------------------------------------------------------------


def test_d2_valusmc_passes_a_kwh_register_on_the_direct_channel(admin: AdminConfig) -> None:
    assert checks.validate_measuring_components(subscription(), context(admin)) == []


def test_d2_valusmc_reports_a_wrong_class_and_a_missing_direct_channel(
        admin: AdminConfig) -> None:
    sps = (sp_copy("SP-1", mc_class="therm"), sp_copy("SP-2", channel="check"))
    candidate = subscription(sp_ids=("SP-1", "SP-2"))
    errors = checks.validate_measuring_components(candidate, context(admin, *sps))
    assert codes_and_paths(errors) == [("D2-VALUSMC", "spLinks[0].spId"),
                                       ("D2-VALUSMC", "spLinks[1].spId")]
    assert "measures therm" in errors[0].message
    assert "no measuring component on the direct channel" in errors[1].message


def test_d2_valusmc_accepts_one_allowed_class_among_several(admin: AdminConfig) -> None:
    sp = sp_copy(components=(MeasuringComponent(mc_id="A", mc_class="kVARh"),
                             MeasuringComponent(mc_id="B", mc_class="kWh")))
    assert checks.validate_measuring_components(subscription(), context(admin, sp)) == []


# --- D2-USINFO and the runner ----------------------------------------------------------------


def test_d2_usinfo_describes_type_status_id_sp_count_and_period(admin: AdminConfig) -> None:
    candidate = subscription(sp_ids=("SP-1", "SP-2"), end=D(2025, 9, 1), info="")
    result = validate_usage_subscription(candidate, context(admin, sp_copy("SP-1"),
                                                            sp_copy("SP-2")))
    assert result.ok
    assert result.candidate.info == "E-RES-US ACTIVE SA-1, 2 SPs, 2025-03-01 to 2025-09-01"


def test_every_failure_of_every_algorithm_is_reported_together(admin: AdminConfig) -> None:
    candidate = subscription(
        time_zone="Europe/Paris",
        sp_links=(UsSpLink(sp_id="SP-1", start=D(2025, 1, 1)),),
        usage_groups=(UsageGroupAssignment(group="NOPE", start=D(2020, 1, 1)),),
        factor_overrides=(FactorOverride(factor="BTU-FACTOR", value=1, start=START),),
        master_external_id="SA-MISSING",
    )
    result = validate_usage_subscription(candidate, context(admin, sp_copy(mc_class="therm")))
    assert codes_and_paths(result.errors) == [
        ("D2-VALUSTMZN", "timeZone"),
        ("D2-USSPDTVAL", "spLinks[0].start"),
        ("D2-USUGDTVAL", "usageGroups[0].group"),
        ("D2-USFOVAL", "factorOverrides[0].factor"),
        ("D2-VAL-SUBUS", "masterExternalId"),
        ("D2-VALUSMC", "spLinks[0].spId"),
    ]


def test_only_the_us_types_listed_validations_run_in_the_listed_order(
        admin: AdminConfig) -> None:
    us_type = admin.us_types["E-RES-US"].model_copy(
        update={"validations": ("D2-VALUSMC", "D2-VALUSTMZN")})
    custom = admin.model_copy(update={"us_types": {**admin.us_types, "E-RES-US": us_type}})
    candidate = subscription(time_zone=None, master_external_id="SA-MISSING")
    result = validate_usage_subscription(candidate, context(custom, sp_copy(mc_class="therm")))
    # No D1-DEFTIMZON: the blank zone stays blank; no D2-VAL-SUBUS: the master is not checked;
    # no D2-USINFO: no info string.
    assert codes_and_paths(result.errors) == [("D2-VALUSMC", "spLinks[0].spId"),
                                              ("D2-VALUSTMZN", "timeZone")]
    assert result.candidate.info == ""
