"""The usage subscription checks (SPEC.md section 5), each bound to its algorithm code.

Every check is a pure function ``(candidate, context) -> list[ValidationError]`` that reports
everything it finds, not only the first problem. Paths use the wire names of the fields
(``spLinks[1].stop``), so that an error reads the same in CCB's To Do as in the message it refers
to. Callers make sure the candidate's US type exists before running them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sync.algorithms import Spot, registry
from sync.config.admin import UsType, check_time_zone
from sync.mdm.context import ValidationContext
from sync.mdm.model import (
    DIRECT_CHANNEL,
    UsageSubscription,
    ValidationError,
    overlaps,
    period_text,
)

TIME_ZONE = "D2-VALUSTMZN"
SP_DATES = "D2-USSPDTVAL"
USAGE_GROUP_DATES = "D2-USUGDTVAL"
FACTOR_OVERRIDES = "D2-USFOVAL"
SUB_US = "D2-VAL-SUBUS"
MEASURING_COMPONENTS = "D2-VALUSMC"


def _us_type(candidate: UsageSubscription, context: ValidationContext) -> UsType:
    us_type = context.us_type(candidate.us_type)
    if us_type is None:
        raise ValueError(f"US type {candidate.us_type!r} is not configured")
    return us_type


def _first_link_per_sp(candidate: UsageSubscription) -> Iterator[tuple[int, str]]:
    """(link index, SP id) for the first link of each SP: SP-level rules report once per SP."""
    seen: set[str] = set()
    for index, link in enumerate(candidate.sp_links):
        if link.sp_id not in seen:
            seen.add(link.sp_id)
            yield index, link.sp_id


def _earliest_end(first: dt.date | None, second: dt.date | None) -> dt.date | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def _listing(codes: tuple[str, ...] | list[str]) -> str:
    return ", ".join(codes) if codes else "none"


@registry.implements(Spot.US_VALIDATION, TIME_ZONE)
def validate_time_zone(candidate: UsageSubscription,
                       context: ValidationContext) -> list[ValidationError]:
    """A valid IANA zone; the base zone when multi-time-zone support is off; otherwise the
    zone of every linked SP that has one."""
    zone = candidate.time_zone
    if not zone:
        return [ValidationError(code=TIME_ZONE, path="timeZone",
                                message="time zone is blank and was not defaulted")]
    try:
        check_time_zone(zone)
    except ValueError as error:
        return [ValidationError(code=TIME_ZONE, path="timeZone", message=str(error))]
    installation = context.admin.installation
    if not installation.multi_time_zone:
        if zone != installation.base_time_zone:
            return [ValidationError(
                code=TIME_ZONE, path="timeZone",
                message=f"time zone {zone} must be the base time zone "
                        f"{installation.base_time_zone} (multi-time-zone support is off)")]
        return []
    errors = []
    for index, sp_id in _first_link_per_sp(candidate):
        sp = context.service_points.get(sp_id)
        if sp is not None and sp.time_zone and sp.time_zone != zone:
            errors.append(ValidationError(
                code=TIME_ZONE, path=f"spLinks[{index}].spId",
                message=f"service point {sp_id} is in time zone {sp.time_zone}, "
                        f"the usage subscription in {zone}"))
    return errors


@registry.implements(Spot.US_VALIDATION, SP_DATES)
def validate_sp_link_dates(candidate: UsageSubscription,
                           context: ValidationContext) -> list[ValidationError]:
    """Each link inside the US period with its stop not before its start, SP type valid for the
    US type, no overlapping links of one SP, and no SP in another non-inactive US of the same US
    type over an overlapping period."""
    us_type = _us_type(candidate, context)
    errors = [*_link_periods(candidate), *_link_overlaps(candidate)]
    for index, sp_id in _first_link_per_sp(candidate):
        sp = context.service_points.get(sp_id)
        if sp is not None and sp.sp_type not in us_type.valid_sp_types:
            errors.append(ValidationError(
                code=SP_DATES, path=f"spLinks[{index}].spId",
                message=f"service point {sp_id} has SP type {sp.sp_type}, not valid for US type "
                        f"{candidate.us_type} (valid: {_listing(us_type.valid_sp_types)})"))
    errors.extend(_shared_with_other_subscriptions(candidate, context))
    return errors


def _link_periods(candidate: UsageSubscription) -> Iterator[ValidationError]:
    start, end = candidate.start_date, candidate.end_date
    for index, link in enumerate(candidate.sp_links):
        path = f"spLinks[{index}]"
        if link.start < start:
            yield ValidationError(
                code=SP_DATES, path=f"{path}.start",
                message=f"link of service point {link.sp_id} starts {link.start}, before the "
                        f"usage subscription starts {start}")
        elif end is not None and link.start > end:
            yield ValidationError(
                code=SP_DATES, path=f"{path}.start",
                message=f"link of service point {link.sp_id} starts {link.start}, after the "
                        f"usage subscription ends {end}")
        if link.stop is not None and link.stop < link.start:
            yield ValidationError(
                code=SP_DATES, path=f"{path}.stop",
                message=f"link of service point {link.sp_id} stops {link.stop}, before it "
                        f"starts {link.start}")
        elif end is not None and (link.stop is None or link.stop > end):
            stops = f"stops {link.stop}" if link.stop else "has no stop date"
            yield ValidationError(
                code=SP_DATES, path=f"{path}.stop",
                message=f"link of service point {link.sp_id} {stops}; the usage subscription "
                        f"ends {end}")


def _link_overlaps(candidate: UsageSubscription) -> Iterator[ValidationError]:
    links = candidate.sp_links
    for later in range(len(links)):
        for earlier in range(later):
            a, b = links[earlier], links[later]
            if a.sp_id == b.sp_id and overlaps(a.start, a.stop, b.start, b.stop):
                yield ValidationError(
                    code=SP_DATES, path=f"spLinks[{later}].start",
                    message=f"link of service point {b.sp_id} ({period_text(b.start, b.stop)}) "
                            f"overlaps spLinks[{earlier}] ({period_text(a.start, a.stop)})")
                break


def _related(candidate: UsageSubscription, other: UsageSubscription) -> bool:
    """A sub US measures for its master, so master and sub may share an SP."""
    return (other.external_id == candidate.master_external_id
            or other.master_external_id == candidate.external_id)


def _shared_with_other_subscriptions(candidate: UsageSubscription,
                                     context: ValidationContext) -> Iterator[ValidationError]:
    if candidate.is_inactive:
        return
    for index, link in enumerate(candidate.sp_links):
        stop = _earliest_end(link.stop, candidate.end_date)
        for other in context.sharing:
            if (other.external_id == candidate.external_id or other.is_inactive
                    or other.us_type != candidate.us_type or _related(candidate, other)):
                continue
            clash = next((o for o in other.sp_links if o.sp_id == link.sp_id and overlaps(
                link.start, stop, o.start, _earliest_end(o.stop, other.end_date))), None)
            if clash is not None:
                yield ValidationError(
                    code=SP_DATES, path=f"spLinks[{index}].spId",
                    message=f"service point {link.sp_id} is already in {other.status.value} "
                            f"usage subscription {other.external_id} "
                            f"({period_text(clash.start, clash.stop)}), overlapping this link "
                            f"({period_text(link.start, stop)})")
                break


@registry.implements(Spot.US_VALIDATION, USAGE_GROUP_DATES)
def validate_usage_group_dates(candidate: UsageSubscription,
                               context: ValidationContext) -> list[ValidationError]:
    """Usage groups configured for the US type, in start order, not overlapping, one in effect
    on the US start date."""
    allowed = tuple(dict.fromkeys(g.group for g in _us_type(candidate, context).usage_groups))
    groups = candidate.usage_groups
    errors = []
    for index, group in enumerate(groups):
        path = f"usageGroups[{index}]"
        if group.group not in allowed:
            errors.append(ValidationError(
                code=USAGE_GROUP_DATES, path=f"{path}.group",
                message=f"usage group {group.group} is not configured for US type "
                        f"{candidate.us_type} (configured: {_listing(allowed)})"))
        if group.end is not None and group.end <= group.start:
            errors.append(ValidationError(
                code=USAGE_GROUP_DATES, path=f"{path}.end",
                message=f"usage group {group.group} ends {group.end}, not after its start "
                        f"{group.start}"))
        if index > 0:
            previous = groups[index - 1]
            if group.start < previous.start:
                errors.append(ValidationError(
                    code=USAGE_GROUP_DATES, path=f"{path}.start",
                    message=f"usage groups must be in start order: {group.group} starts "
                            f"{group.start}, before usageGroups[{index - 1}] ({previous.start})"))
            elif overlaps(previous.start, previous.end, group.start, group.end):
                errors.append(ValidationError(
                    code=USAGE_GROUP_DATES, path=f"{path}.start",
                    message=f"usage group {group.group} ({period_text(group.start, group.end)}) "
                            f"overlaps usageGroups[{index - 1}] "
                            f"({period_text(previous.start, previous.end)})"))
    start = candidate.start_date
    if not any(g.start <= start and (g.end is None or start < g.end) for g in groups):
        errors.append(ValidationError(
            code=USAGE_GROUP_DATES, path="usageGroups",
            message=f"no usage group in effect on the start date {start}"))
    return errors


@registry.implements(Spot.US_VALIDATION, FACTOR_OVERRIDES)
def validate_factor_overrides(candidate: UsageSubscription,
                              context: ValidationContext) -> list[ValidationError]:
    """Allowed factors, start before end, inside the US period, no overlap per factor."""
    allowed = _us_type(candidate, context).override_factors
    start, end = candidate.start_date, candidate.end_date
    overrides = candidate.factor_overrides
    errors = []
    for index, override in enumerate(overrides):
        path = f"factorOverrides[{index}]"
        if override.factor not in allowed:
            errors.append(ValidationError(
                code=FACTOR_OVERRIDES, path=f"{path}.factor",
                message=f"factor {override.factor} may not be overridden on US type "
                        f"{candidate.us_type} (allowed: {_listing(allowed)})"))
        if override.start < start or (end is not None and override.start >= end):
            errors.append(ValidationError(
                code=FACTOR_OVERRIDES, path=f"{path}.start",
                message=f"override of {override.factor} starts {override.start}, outside the "
                        f"usage subscription period ({period_text(start, end)})"))
        if override.end is not None and override.end <= override.start:
            errors.append(ValidationError(
                code=FACTOR_OVERRIDES, path=f"{path}.end",
                message=f"override of {override.factor} ends {override.end}, not after its "
                        f"start {override.start}"))
        elif end is not None and (override.end is None or override.end > end):
            errors.append(ValidationError(
                code=FACTOR_OVERRIDES, path=f"{path}.end",
                message=f"override of {override.factor} runs to "
                        f"{override.end or 'open end'}, past the usage subscription end {end}"))
        for earlier in range(index):
            other = overrides[earlier]
            if other.factor == override.factor and overlaps(
                    other.start, other.end, override.start, override.end):
                errors.append(ValidationError(
                    code=FACTOR_OVERRIDES, path=f"{path}.start",
                    message=f"override of {override.factor} "
                            f"({period_text(override.start, override.end)}) overlaps "
                            f"factorOverrides[{earlier}] ({period_text(other.start, other.end)})"))
                break
    return errors


@registry.implements(Spot.US_VALIDATION, SUB_US)
def validate_sub_subscription(candidate: UsageSubscription,
                              context: ValidationContext) -> list[ValidationError]:
    """A sub US's master exists, is not a sub itself, covers the sub's period, and stays within
    its US type's limit of subs."""
    master_id = candidate.master_external_id
    if master_id is None:
        return []

    def error(message: str) -> ValidationError:
        return ValidationError(code=SUB_US, path="masterExternalId", message=message)

    if master_id == candidate.external_id:
        return [error("a usage subscription cannot be its own master")]
    master = context.master
    if master is None or master.external_id != master_id:
        return [error(f"master usage subscription {master_id} does not exist in MDM")]
    errors = []
    if master.master_external_id is not None:
        errors.append(error(f"master {master_id} is itself a sub of "
                            f"{master.master_external_id}; subs cannot be nested"))
    if master.start_date > candidate.start_date or (master.end_date is not None and (
            candidate.end_date is None or candidate.end_date > master.end_date)):
        errors.append(error(
            f"master {master_id} ({period_text(master.start_date, master.end_date)}) does not "
            f"cover the sub's period ({period_text(candidate.start_date, candidate.end_date)})"))
    master_type = context.us_type(master.us_type)
    limit = master_type.max_sub_us if master_type is not None else 0
    if not candidate.is_inactive and context.master_other_subs + 1 > limit:
        errors.append(error(
            f"master {master_id} already has {context.master_other_subs} sub usage "
            f"subscription(s); US type {master.us_type} allows at most {limit}"))
    return errors


@registry.implements(Spot.US_VALIDATION, MEASURING_COMPONENTS)
def validate_measuring_components(candidate: UsageSubscription,
                                  context: ValidationContext) -> list[ValidationError]:
    """Each linked SP measures, on the direct channel, a class the US type allows."""
    allowed = _us_type(candidate, context).direct_channel_mc_classes
    errors = []
    for index, sp_id in _first_link_per_sp(candidate):
        sp = context.service_points.get(sp_id)
        if sp is None:
            continue
        direct = [mc.mc_class for mc in sp.measuring_components if mc.channel == DIRECT_CHANNEL]
        path = f"spLinks[{index}].spId"
        if not direct:
            errors.append(ValidationError(
                code=MEASURING_COMPONENTS, path=path,
                message=f"service point {sp_id} has no measuring component on the "
                        f"{DIRECT_CHANNEL} channel"))
        elif allowed and not set(direct) & set(allowed):
            errors.append(ValidationError(
                code=MEASURING_COMPONENTS, path=path,
                message=f"service point {sp_id} measures {_listing(direct)} on the "
                        f"{DIRECT_CHANNEL} channel; US type {candidate.us_type} needs one of "
                        f"{_listing(allowed)}"))
    return errors
