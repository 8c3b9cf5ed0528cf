"""Running a US type's validations, and the two algorithms that complete the candidate.

The US type's ``validations`` list chooses which algorithms run and in which order. Two of them
complete the candidate rather than check it: ``D1-DEFTIMZON`` fills a blank time zone and runs
before every check (the checks judge the defaulted value), and ``D2-USINFO`` writes the info
string and runs after them (the info describes the final candidate). Every check runs even when
an earlier one failed, so one answer lists every problem.

Importing this module binds every ``US_VALIDATION`` and ``US_INFO`` algorithm of the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sync.algorithms import Spot, registry
from sync.mdm import checks as _checks  # noqa: F401  (binds the D2 checks)
from sync.mdm.context import ValidationContext
from sync.mdm.model import UsageSubscription, ValidationError, period_text

DEFAULT_TIME_ZONE = "D1-DEFTIMZON"
US_INFO = "D2-USINFO"

Check = Callable[[UsageSubscription, ValidationContext], list[ValidationError]]
Completion = Callable[[UsageSubscription, ValidationContext], UsageSubscription]
Describe = Callable[[UsageSubscription], str]


@registry.implements(Spot.US_VALIDATION, DEFAULT_TIME_ZONE)
def default_time_zone(candidate: UsageSubscription,
                      context: ValidationContext) -> UsageSubscription:
    """A blank time zone becomes the base zone; under multi-time-zone support, the zone the
    linked SPs share (the base zone when they have none or disagree, which D2-VALUSTMZN then
    reports)."""
    if candidate.time_zone and candidate.time_zone.strip():
        return candidate
    installation = context.admin.installation
    zone = installation.base_time_zone
    if installation.multi_time_zone:
        zones = {sp.time_zone for sp_id in candidate.sp_ids()
                 if (sp := context.service_points.get(sp_id)) is not None and sp.time_zone}
        if len(zones) == 1:
            zone = zones.pop()
    return candidate.model_copy(update={"time_zone": zone})


@registry.implements(Spot.US_INFO, US_INFO)
def describe_usage_subscription(subscription: UsageSubscription) -> str:
    """``E-RES-US ACTIVE SA-1, 2 SPs, 2025-01-01 to open``."""
    count = len(subscription.sp_ids())
    return (f"{subscription.us_type} {subscription.status.value} {subscription.external_id}, "
            f"{count} SP{'' if count == 1 else 's'}, "
            f"{period_text(subscription.start_date, subscription.end_date)}")


@registry.implements(Spot.US_VALIDATION, US_INFO)
def refresh_info(candidate: UsageSubscription, context: ValidationContext) -> UsageSubscription:
    """Write the info string with the installation's US info algorithm."""
    describe = cast(Describe, registry.get(Spot.US_INFO, context.admin.algorithms.us_info))
    return candidate.model_copy(update={"info": describe(candidate)})


# Completion steps run outside the listed order: the first before the checks, the last after.
_FIRST = (DEFAULT_TIME_ZONE,)
_LAST = (US_INFO,)


@dataclass(frozen=True)
class ValidationResult:
    candidate: UsageSubscription  # completed (time zone defaulted, info written)
    errors: tuple[ValidationError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_usage_subscription(candidate: UsageSubscription,
                                context: ValidationContext) -> ValidationResult:
    """Run the candidate's US type validations; the US type must be configured."""
    us_type = context.us_type(candidate.us_type)
    if us_type is None:
        raise ValueError(f"US type {candidate.us_type!r} is not configured")
    codes = us_type.validations
    for code in _FIRST:
        if code in codes:
            candidate = _completion(code)(candidate, context)
    errors: list[ValidationError] = []
    for code in codes:
        if code not in _FIRST and code not in _LAST:
            errors.extend(cast(Check, registry.get(Spot.US_VALIDATION, code))(candidate, context))
    for code in _LAST:
        if code in codes:
            candidate = _completion(code)(candidate, context)
    return ValidationResult(candidate, tuple(errors))


def _completion(code: str) -> Completion:
    return cast(Completion, registry.get(Spot.US_VALIDATION, code))
