"""Deciding what a command does to MDM: apply it, reject it with every error, or skip it as a
duplicate. Pure: :func:`decide` takes the stored state and the validation context;
:func:`decide_with` gathers both from a :class:`~sync.mdm.ports.MdmView` (any store).

Besides the configured validations, a few checks always run because without them the candidate
cannot be stored or validated at all; they report the code ``MDM-APPLY``: an unknown or changed
US type, an end before the start, a link to an SP MDM has no copy of, an invalid carried SP copy,
and a return to ``PENDING`` (CCB never moves an SA back to pending start, so such a message is
out of order in a way versions cannot explain).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sync.config.admin import AdminConfig, UsType, check_time_zone
from sync.mdm.commands import UpsertContact, UpsertServicePoint, UpsertUsageSubscription
from sync.mdm.context import ValidationContext
from sync.mdm.decision import ApplyDecision, EntityType, Outcome
from sync.mdm.model import (
    Contact,
    ServicePointCopy,
    UsageGroupAssignment,
    UsageSubscription,
    UsStatus,
    ValidationError,
)
from sync.mdm.ports import MdmView
from sync.mdm.validation import validate_usage_subscription

APPLY_CHECK = "MDM-APPLY"


def _error(path: str, message: str) -> ValidationError:
    return ValidationError(code=APPLY_CHECK, path=path, message=message)


# --- usage subscriptions --------------------------------------------------------------------


def derived_usage_groups(us_type: UsType, start: dt.date,
                         end: dt.date | None) -> tuple[UsageGroupAssignment, ...]:
    """The US type's usage group periods that touch the US period. An empty period (a pending
    start canceled on its start date) still gets the group in effect on its start date."""
    last_day = end if end is not None and end > start else start + dt.timedelta(days=1)
    return tuple(
        UsageGroupAssignment(group=period.group, start=period.start, end=period.end)
        for period in us_type.usage_groups
        if period.start < last_day and (period.end is None or period.end > start)
    )


def candidate_for(command: UpsertUsageSubscription, us_type: UsType) -> UsageSubscription:
    """The US the command asks for, before defaulting and validation."""
    groups = command.usage_groups
    if groups is None:
        groups = derived_usage_groups(us_type, command.start_date, command.end_date)
    return UsageSubscription(
        external_id=command.external_id,
        external_account_id=command.external_account_id,
        us_type=command.us_type,
        status=command.us_status,
        start_date=command.start_date,
        end_date=command.end_date,
        time_zone=command.time_zone.strip() if command.time_zone else None,
        main_contact_id=command.main_contact_id,
        division=command.division,
        master_external_id=command.master_external_id,
        sp_links=command.sp_links,
        usage_groups=groups,
        factor_overrides=command.factor_overrides,
        last_applied_version=command.version,
        sync_request_id=command.sync_request_id,
    )


def decide(command: UpsertUsageSubscription, stored: UsageSubscription | None,
           context: ValidationContext) -> ApplyDecision:
    """Apply, reject or skip ``command`` given the stored US (if any) and the context."""

    def decided(outcome: Outcome, **result: Any) -> ApplyDecision:
        # Built once with its outcome: a decision is made for every message.
        return ApplyDecision(
            outcome=outcome, entity_type=EntityType.USAGE_SUBSCRIPTION,
            entity_id=command.external_id, version=command.version,
            stored_version=stored.last_applied_version if stored is not None else None,
            previous_status=stored.status if stored is not None else None, **result)

    if stored is not None and command.version <= stored.last_applied_version:
        return decided(Outcome.DUPLICATE)
    admin = context.admin
    us_type = admin.us_types.get(command.us_type)
    if us_type is None:
        known = ", ".join(sorted(admin.us_types)) or "none"
        return decided(Outcome.REJECTED, errors=(_error(
            "usType", f"unknown US type {command.us_type} (configured: {known})"),))
    carried, errors = _carried_service_points(command, context, admin)
    errors.extend(_structure_errors(command, stored, carried))
    candidate = candidate_for(command, us_type)
    result = validate_usage_subscription(candidate, replace(context, service_points=carried))
    errors.extend(result.errors)
    if errors:
        return decided(Outcome.REJECTED, errors=tuple(errors))
    carried_ids = dict.fromkeys(sp.sp_id for sp in command.service_points)
    to_write = tuple(carried[sp_id] for sp_id in carried_ids
                     if context.service_points.get(sp_id) != carried[sp_id])
    return decided(Outcome.APPLIED, usage_subscription=result.candidate,
                   service_points=to_write)


def _carried_service_points(
    command: UpsertUsageSubscription, context: ValidationContext, admin: AdminConfig,
) -> tuple[dict[str, ServicePointCopy], list[ValidationError]]:
    """The SP copies the US will be validated with: stored ones, replaced by newer carried ones."""
    merged = dict(context.service_points)
    errors: list[ValidationError] = []
    for index, sp in enumerate(command.service_points):
        errors.extend(_service_point_errors(sp, admin, f"servicePoints[{index}]."))
        current = merged.get(sp.sp_id)
        if current is None or sp.version > current.version:
            merged[sp.sp_id] = sp
    return merged, errors


def _structure_errors(command: UpsertUsageSubscription, stored: UsageSubscription | None,
                      service_points: dict[str, ServicePointCopy]) -> list[ValidationError]:
    errors = []
    if stored is not None and stored.us_type != command.us_type:
        errors.append(_error("usType", f"the US type cannot change (stored {stored.us_type}, "
                                       f"message {command.us_type})"))
    if command.end_date is not None and command.end_date < command.start_date:
        errors.append(_error("endDate", f"end date {command.end_date} is before the start "
                                        f"date {command.start_date}"))
    if (stored is not None and stored.status is not UsStatus.PENDING
            and command.us_status is UsStatus.PENDING):
        errors.append(_error("status", f"a {stored.status.value} usage subscription cannot "
                                       f"return to PENDING (SA status {command.sa_status})"))
    reported: set[str] = set()
    for index, link in enumerate(command.sp_links):
        if link.sp_id not in service_points and link.sp_id not in reported:
            reported.add(link.sp_id)
            errors.append(_error(f"spLinks[{index}].spId",
                                 f"service point {link.sp_id} is unknown to MDM (not in the "
                                 "message and never synchronized)"))
    return errors


def decide_with(view: MdmView, command: UpsertUsageSubscription,
                admin: AdminConfig) -> ApplyDecision:
    """Gather the stored US and the validation context from ``view``, then :func:`decide`.
    Reads happen in a fixed order (the US, its SPs, its master, the USs sharing its SPs) so
    that a locking adapter takes its locks in that order."""
    stored = view.usage_subscription(command.external_id)
    if stored is not None and command.version <= stored.last_applied_version:
        return decide(command, stored, ValidationContext(admin))
    sp_ids = sorted({link.sp_id for link in command.sp_links}
                    | {sp.sp_id for sp in command.service_points})
    master_id = command.master_external_id
    master = None
    master_other_subs = 0
    if master_id is not None and master_id != command.external_id:
        master = view.usage_subscription(master_id)
        master_other_subs = view.count_active_subs(master_id, excluding=command.external_id)
    context = ValidationContext(
        admin=admin,
        service_points=view.service_points(sp_ids),
        master=master,
        master_other_subs=master_other_subs,
        sharing=tuple(view.sharing_service_points(sp_ids, command.us_type,
                                                  excluding=command.external_id)),
    )
    return decide(command, stored, context)


# --- service points and contacts ------------------------------------------------------------


def _service_point_errors(sp: ServicePointCopy | UpsertServicePoint, admin: AdminConfig,
                          prefix: str = "") -> list[ValidationError]:
    errors = []
    if sp.sp_type not in admin.sp_types:
        known = ", ".join(sorted(admin.sp_types)) or "none"
        errors.append(_error(f"{prefix}spType", f"service point {sp.sp_id} has unknown SP type "
                                                f"{sp.sp_type} (configured: {known})"))
    if sp.time_zone:
        try:
            check_time_zone(sp.time_zone)
        except ValueError as error:
            errors.append(_error(f"{prefix}timeZone", f"service point {sp.sp_id}: {error}"))
    seen: set[str] = set()
    for index, component in enumerate(sp.measuring_components):
        if component.mc_id in seen:
            errors.append(_error(f"{prefix}measuringComponents[{index}].mcId",
                                 f"measuring component {component.mc_id} appears twice on "
                                 f"service point {sp.sp_id}"))
        seen.add(component.mc_id)
    return errors


def decide_service_point(command: UpsertServicePoint, stored: ServicePointCopy | None,
                         admin: AdminConfig) -> ApplyDecision:
    decision = ApplyDecision(
        outcome=Outcome.DUPLICATE, entity_type=EntityType.SERVICE_POINT,
        entity_id=command.sp_id, version=command.version,
        stored_version=stored.version if stored is not None else None)
    if stored is not None and command.version <= stored.version:
        return decision
    errors = _service_point_errors(command, admin)
    if errors:
        return decision.model_copy(update={"outcome": Outcome.REJECTED, "errors": tuple(errors)})
    return decision.model_copy(update={"outcome": Outcome.APPLIED,
                                       "service_points": (command.service_point_copy(),)})


def decide_contact(command: UpsertContact, stored: Contact | None) -> ApplyDecision:
    decision = ApplyDecision(
        outcome=Outcome.DUPLICATE, entity_type=EntityType.CONTACT,
        entity_id=command.contact_id, version=command.version,
        stored_version=stored.version if stored is not None else None)
    if stored is not None and command.version <= stored.version:
        return decision
    if not command.name.strip():
        return decision.model_copy(update={"outcome": Outcome.REJECTED, "errors": (
            _error("name", f"contact {command.contact_id} has a blank name"),)})
    contact = Contact(contact_id=command.contact_id, name=command.name,
                      is_business=command.is_business, phones=command.phones,
                      email=command.email, version=command.version)
    return decision.model_copy(update={"outcome": Outcome.APPLIED, "contact": contact})
