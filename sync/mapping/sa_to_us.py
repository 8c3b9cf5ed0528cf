"""Sync message -> MDM command, and MDM's decision -> acknowledgement.

One message gives at most one command, and one acknowledgement:

- ``SA`` -> :class:`UpsertUsageSubscription` carrying copies of the linked service points, so
  one message is enough for MDM even when the SPs were never sent on their own. An SA whose type
  maps to no US type (a deposit, a non-metered plan) gives no command: MDM has nothing to hold
  for it, and the acknowledgement is ``SYNCHRONIZED`` with no ``mdmUsId``.
- ``PERSON`` -> :class:`UpsertContact`.
- ``SA_RELATIONSHIP`` -> no command: MDM keeps the master on the sub US, and the sub SA's own
  ``SA`` message carries ``masterExternalId`` (validated there by D2-VAL-SUBUS). The relationship
  message is acknowledged ``SYNCHRONIZED`` with no ``mdmUsId`` (nothing was looked up).

Dropped on the way to MDM because MDM keeps no such field: link reads (``startRead``,
``stopRead``), the SA type, the premise and the account attributes other than the division.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sync.mapping.messages import (
    AckError,
    Acknowledgement,
    AckOutcome,
    EntityType,
    PersonSyncMessage,
    SaSyncMessage,
    ServicePointSnapshot,
    SyncMessage,
)
from sync.mdm.commands import MdmCommand, UpsertContact, UpsertServicePoint, UpsertUsageSubscription
from sync.mdm.decision import ApplyDecision, Outcome
from sync.mdm.decision import EntityType as MdmEntityType
from sync.mdm.model import (
    ContactPhone,
    ServicePointCopy,
    UsageFlag,
    ValidationError,
)


def command_for(message: SyncMessage) -> MdmCommand | None:
    """The MDM command for ``message``, or None when MDM has nothing to apply."""
    if isinstance(message, SaSyncMessage):
        return usage_subscription_command(message)
    if isinstance(message, PersonSyncMessage):
        return contact_command(message)
    return None


def usage_subscription_command(message: SaSyncMessage) -> UpsertUsageSubscription | None:
    if message.us_type is None:
        return None
    # One validation of the whole command, its links and SP copies included, from plain
    # values: the same command as building each part as a model first, in half the time.
    return UpsertUsageSubscription.model_validate({
        "external_id": message.external_id,
        "external_account_id": message.external_account_id,
        "us_type": message.us_type,
        "sa_status": message.sa_status,
        "start_date": message.start_date,
        "end_date": message.end_date,
        "time_zone": message.time_zone,
        "main_contact_id": message.main_contact,
        "division": message.division,
        "master_external_id": message.master_external_id,
        "sp_links": [
            {"sp_id": link.sp_id, "start": link.start_date, "stop": link.stop_date,
             "usage_flag": UsageFlag(link.usage_flag), "use_percent": link.use_percent}
            for link in message.sp_links],
        "service_points": [_service_point_fields(sp) for sp in message.service_points],
        "version": message.version,
        "sync_request_id": message.sync_request_id,
    })


def service_point_commands(message: SaSyncMessage) -> tuple[UpsertServicePoint, ...]:
    """The SA's service points as commands of their own, for loading MDM's SP copies without
    a usage subscription (the US command already carries them)."""
    return tuple(
        UpsertServicePoint(
            sp_id=copy.sp_id, sp_type=copy.sp_type, time_zone=copy.time_zone,
            measuring_components=copy.measuring_components, meter_id=copy.meter_id,
            version=copy.version, sync_request_id=message.sync_request_id)
        for copy in map(_service_point_copy, message.service_points))


def contact_command(message: PersonSyncMessage) -> UpsertContact:
    return UpsertContact(
        contact_id=message.external_id, name=message.name, is_business=message.is_business,
        email=message.email, version=message.version, sync_request_id=message.sync_request_id,
        phones=tuple(ContactPhone(type=phone.type, number=phone.number, primary=phone.primary)
                     for phone in message.phones),
    )


def _service_point_fields(sp: ServicePointSnapshot) -> dict[str, Any]:
    return {"sp_id": sp.sp_id, "sp_type": sp.sp_type, "time_zone": sp.time_zone,
            "meter_id": sp.meter_id, "version": sp.version,
            "measuring_components": [
                {"mc_id": mc.mc_id, "mc_class": mc.mc_class, "channel": mc.channel}
                for mc in sp.measuring_components]}


def _service_point_copy(sp: ServicePointSnapshot) -> ServicePointCopy:
    return ServicePointCopy.model_validate(_service_point_fields(sp))


# --- acknowledgements ------------------------------------------------------------------------

_OUTCOME = {
    Outcome.APPLIED: AckOutcome.SYNCHRONIZED,
    Outcome.REJECTED: AckOutcome.ERROR,
    Outcome.DUPLICATE: AckOutcome.DUPLICATE,
}


def acknowledgement_for(message: SyncMessage, decision: ApplyDecision | None,
                        processed_at: dt.datetime) -> Acknowledgement:
    """MDM's answer to ``message`` given what applying :func:`command_for` decided (None when
    there was no command)."""
    errors: tuple[ValidationError, ...] = ()
    outcome = AckOutcome.SYNCHRONIZED
    if decision is not None:
        outcome, errors = _OUTCOME[decision.outcome], decision.errors
    return Acknowledgement(
        sync_request_id=message.sync_request_id,
        entity_type=EntityType(message.entity_type),
        entity_id=message.external_id,
        version=message.version,
        outcome=outcome,
        errors=tuple(_ack_error(error) for error in errors),
        mdm_us_id=_mdm_us_id(message, decision),
        processed_at=processed_at,
    )


def _mdm_us_id(message: SyncMessage, decision: ApplyDecision | None) -> str | None:
    """The US MDM holds for the message's SA: the US is keyed by its external id (the SA id)."""
    if decision is None or decision.entity_type is not MdmEntityType.USAGE_SUBSCRIPTION:
        return None
    if decision.outcome is Outcome.REJECTED and decision.stored_version is None:
        return None  # rejected before MDM ever held it
    return decision.entity_id


# MDM names a link's period ``start``/``stop``; the wire names it ``startDate``/``stopDate``.
_LINK_FIELD = re.compile(r"^(spLinks\[\d+\])\.(start|stop)$")
_TOP_LEVEL = {"status": "saStatus"}


def wire_path(path: str) -> str:
    """An MDM validation path in the wire's field names."""
    match = _LINK_FIELD.match(path)
    if match:
        return f"{match.group(1)}.{match.group(2)}Date"
    return _TOP_LEVEL.get(path, path)


def _ack_error(error: ValidationError) -> AckError:
    return AckError(code=error.code, path=wire_path(error.path), message=error.message)
