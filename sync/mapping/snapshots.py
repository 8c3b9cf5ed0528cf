"""CCB state -> sync message: the full snapshot of one entity, read through a
:class:`~sync.ccb.ports.CcbView`.

Pure: the delivery fields (``version``, ``syncRequestId``, ``eventTime``) come in as arguments
from the outbox, which owns them. ``version`` cannot simply be the SA's own version: a link
change (a start read from a completed field activity) changes the SA's snapshot without saving
the SA, so the outbox numbers the snapshots it publishes per entity.

Lists are sorted (links by start date, SP and link id; service points by id) so that one state
always gives one snapshot, and :func:`~sync.mapping.messages.snapshot_fingerprint` can tell an
unchanged snapshot from a changed one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json

from sync.ccb.changes import ACCOUNT, PERSON, PREMISE, SA, SA_RELATIONSHIP, SERVICE_POINT
from sync.ccb.model import Person, SaSpLink, ServiceAgreement, ServicePoint
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig
from sync.mapping.messages import (
    MAX_VERSION,
    AccountAttributes,
    MeasuringComponentSnapshot,
    PersonSyncMessage,
    PhoneSnapshot,
    SaRelationshipSyncMessage,
    SaSyncMessage,
    ServicePointSnapshot,
    SpLinkSnapshot,
    SyncMessage,
)


class SnapshotError(ValueError):
    """CCB state that cannot be snapshotted, e.g. ``SA 'SA-1': account_id: account 'A-9'
    not found``; names the entity, its id, the field and the reason."""

    def __init__(self, entity: str, entity_id: str, field: str, reason: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.field = field
        self.reason = reason
        super().__init__(f"{entity} {entity_id!r}: {field}: {reason}")


@dataclass(frozen=True)
class Delivery:
    """What the outbox stamps on a snapshot; not part of the entity's state."""

    version: int
    sync_request_id: str
    event_time: dt.datetime


def sa_snapshot(view: CcbView, admin: AdminConfig, sa_id: str,
                delivery: Delivery) -> SaSyncMessage:
    sa = _require_sa(view, sa_id)
    sa_type = admin.sa_types.get(sa.sa_type)
    if sa_type is None:
        raise SnapshotError("SA", sa.id, "sa_type",
                            f"SA type {sa.sa_type!r} is not configured (sa_types)")
    account = view.account(sa.account_id)
    if account is None:
        raise SnapshotError("SA", sa.id, "account_id", f"account {sa.account_id!r} not found")
    links = sorted(view.links_of_sa(sa.id),
                   key=lambda link: (link.start_date, link.sp_id, link.id))
    service_points = [_require_sp(view, sa, sp_id)
                      for sp_id in sorted({link.sp_id for link in links})]
    return SaSyncMessage(
        external_id=sa.id,
        version=delivery.version,
        sync_request_id=delivery.sync_request_id,
        event_time=delivery.event_time,
        sa_type=sa.sa_type,
        us_type=sa_type.us_type,
        sa_status=sa.status.value,
        start_date=sa.start_date,
        end_date=sa.end_date,
        time_zone=_time_zone(view, sa, links),
        external_account_id=account.id,
        account=AccountAttributes(account_id=account.id, customer_class=account.customer_class,
                                  bill_cycle=account.bill_cycle, division=account.division),
        division=account.division,
        main_contact=account.main_person_id,
        premise_id=sa.premise_id,
        master_external_id=sa.master_sa_id,
        sp_links=tuple(_link(link) for link in links),
        service_points=tuple(_service_point(sp) for sp in service_points),
    )


def person_snapshot(view: CcbView, person_id: str, delivery: Delivery) -> PersonSyncMessage:
    person = view.person(person_id)
    if person is None:
        raise SnapshotError("person", person_id, "id", "person not found")
    return _person(person, delivery)


def sa_relationship_snapshot(view: CcbView, sa_id: str,
                             delivery: Delivery) -> SaRelationshipSyncMessage:
    """The master/sub relationship of ``sa_id`` (the sub SA); its period is the sub SA's."""
    sa = _require_sa(view, sa_id)
    return SaRelationshipSyncMessage(
        external_id=sa.id, version=delivery.version, sync_request_id=delivery.sync_request_id,
        event_time=delivery.event_time, master_external_id=sa.master_sa_id,
        start_date=sa.start_date, end_date=sa.end_date,
    )


def snapshot_for(view: CcbView, admin: AdminConfig, entity_type: str, entity_id: str,
                 delivery: Delivery) -> SyncMessage:
    """The snapshot for one entry of :attr:`sync.ccb.changes.Changes.changed`."""
    if entity_type == SA:
        return sa_snapshot(view, admin, entity_id, delivery)
    if entity_type == PERSON:
        return person_snapshot(view, entity_id, delivery)
    if entity_type == SA_RELATIONSHIP:
        return sa_relationship_snapshot(view, entity_id, delivery)
    raise SnapshotError(entity_type, entity_id, "entity_type",
                        f"unknown entity type (known: {SA}, {PERSON}, {SA_RELATIONSHIP})")


def synchronized_entities(view: CcbView,
                          changed: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The entities to snapshot for ``changed`` (entries of ``Changes.changed``), in order and
    each once: SAs, persons and relationships as they are; an account, premise or service point
    as the SAs whose snapshots carry it (the account's SAs, the SAs at the premise, the SAs
    linked to the service point)."""
    targets: dict[tuple[str, str], None] = {}
    for entity_type, entity_id in changed:
        if entity_type in (SA, PERSON, SA_RELATIONSHIP):
            targets[(entity_type, entity_id)] = None
        elif entity_type == ACCOUNT:
            targets.update(((SA, sa.id), None) for sa in view.sas_of_account(entity_id))
        elif entity_type == PREMISE:
            targets.update(((SA, sa.id), None) for sa in view.sas_at_premise(entity_id))
        elif entity_type == SERVICE_POINT:
            targets.update(((SA, link.sa_id), None) for link in view.links_at_sp(entity_id))
        else:
            raise SnapshotError(entity_type, entity_id, "entity_type", "unknown change kind")
    return list(targets)


# --- parts ----------------------------------------------------------------------------------


def _require_sa(view: CcbView, sa_id: str) -> ServiceAgreement:
    sa = view.sa(sa_id)
    if sa is None:
        raise SnapshotError("SA", sa_id, "id", "SA not found")
    return sa


def _require_sp(view: CcbView, sa: ServiceAgreement, sp_id: str) -> ServicePoint:
    sp = view.service_point(sp_id)
    if sp is None:
        raise SnapshotError("SA", sa.id, "links.sp_id", f"service point {sp_id!r} not found")
    return sp


def _time_zone(view: CcbView, sa: ServiceAgreement, links: list[SaSpLink]) -> str | None:
    """The premise's time zone, else the first linked SP's that has one, else none (MDM's
    D1-DEFTIMZON defaults a blank zone)."""
    if sa.premise_id is not None:
        premise = view.premise(sa.premise_id)
        if premise is not None and premise.time_zone:
            return premise.time_zone
    for link in links:
        sp = view.service_point(link.sp_id)
        if sp is not None and sp.time_zone:
            return sp.time_zone
    return None


def _link(link: SaSpLink) -> SpLinkSnapshot:
    return SpLinkSnapshot(
        sp_id=link.sp_id, start_date=link.start_date, stop_date=link.stop_date,
        start_read=link.start_read, stop_read=link.stop_read, usage_flag=link.usage_flag.value,
        use_percent=link.use_percent,
    )


def _service_point(sp: ServicePoint) -> ServicePointSnapshot:
    return ServicePointSnapshot(
        sp_id=sp.id, sp_type=sp.sp_type, premise_id=sp.premise_id, time_zone=sp.time_zone,
        meter_id=sp.meter_id, version=sp.version,
        measuring_components=tuple(
            MeasuringComponentSnapshot(mc_id=mc.id, mc_class=mc.mc_class, channel=mc.channel)
            for mc in sp.measuring_components),
    )


def _person(person: Person, delivery: Delivery) -> PersonSyncMessage:
    return PersonSyncMessage(
        external_id=person.id, version=delivery.version,
        sync_request_id=delivery.sync_request_id, event_time=delivery.event_time,
        name=person.name, is_business=person.is_business, email=person.email,
        phones=tuple(PhoneSnapshot(type=phone.type, number=phone.number, primary=phone.primary)
                     for phone in person.phones),
    )


# --- SA snapshots from plain rows ---------------------------------------------------------
#
# The same snapshot as :func:`sa_snapshot` + :func:`~sync.mapping.codec.encode` +
# :func:`~sync.mapping.messages.snapshot_fingerprint`, built from row values without the wire
# models (a set-based batch path has the rows, not models). The document is the message's JSON
# form in the wire models' field order, without the delivery fields; the payload is serialized
# by pydantic's own serializer. A property test holds the two ways byte for byte.

_SA_STATUS_CODES = frozenset({"10", "20", "30", "40", "50", "60", "70"})
_USAGE_FLAGS = frozenset({"+", "-", "check"})


def _number(value: Any, low: float | None = None, high: float | None = None) -> float | None:
    """``value`` as the float the wire model holds; None when the model would refuse it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or (low is not None and number < low) \
            or (high is not None and number > high):
        return None
    return number


def sa_snapshot_document(admin: AdminConfig, sa: Mapping[str, Any], account: Mapping[str, Any],
                         links: Sequence[Mapping[str, Any]],
                         service_points: Mapping[str, Mapping[str, Any]],
                         premise_time_zone: str | None,
                         status: str | None = None) -> dict[str, Any] | None:
    """The SA's snapshot document from its row, its account's, its links', their service
    points' (by id) and its premise's time zone (``status``: the SA's status if not the row's);
    None when the rows are anything the wire models would refuse or :func:`sa_snapshot` would
    report (build it that way then)."""
    sa_type = admin.sa_types.get(sa["sa_type"])
    status = sa["status"] if status is None else status
    if sa_type is None or status not in _SA_STATUS_CODES or not sa["id"] or not account["id"]:
        return None
    ordered = sorted(links, key=lambda link: (link["start_date"], link["sp_id"], link["id"]))
    link_documents = []
    for link in ordered:
        reads = [None if link[name] is None else _number(link[name])
                 for name in ("start_read", "stop_read")]
        percent = _number(link["use_percent"], 0.0, 100.0)
        if not link["sp_id"] or link["sp_id"] not in service_points or percent is None \
                or link["usage_flag"] not in _USAGE_FLAGS \
                or any(read is None and link[name] is not None
                       for read, name in zip(reads, ("start_read", "stop_read"), strict=True)):
            return None
        link_documents.append({
            "spId": link["sp_id"], "startDate": link["start_date"].isoformat(),
            "stopDate": None if link["stop_date"] is None else link["stop_date"].isoformat(),
            "startRead": reads[0], "stopRead": reads[1], "usageFlag": link["usage_flag"],
            "usePercent": percent})
    point_documents = []
    for sp_id in sorted({link["sp_id"] for link in ordered}):
        sp = service_points[sp_id]
        components = sp["measuring_components"] or []
        if not isinstance(sp["version"], int) or not 1 <= sp["version"] <= MAX_VERSION \
                or any(not component.get("id") for component in components):
            return None
        point_documents.append({
            "spId": sp_id, "spType": sp["sp_type"], "premiseId": sp["premise_id"],
            "timeZone": sp["time_zone"], "meterId": sp["meter_id"],
            "measuringComponents": [
                {"mcId": component["id"], "mcClass": component["mc_class"],
                 "channel": component.get("channel", "direct")} for component in components],
            "version": sp["version"]})
    time_zone = premise_time_zone if sa["premise_id"] is not None and premise_time_zone \
        else next((service_points[link["sp_id"]]["time_zone"] for link in ordered
                   if service_points[link["sp_id"]]["time_zone"]), None)
    return {
        "schemaVersion": 1, "externalId": sa["id"], "entityType": "SA",
        "saType": sa["sa_type"], "usType": sa_type.us_type, "saStatus": status,
        "startDate": sa["start_date"].isoformat(),
        "endDate": None if sa["end_date"] is None else sa["end_date"].isoformat(),
        "timeZone": time_zone, "externalAccountId": account["id"],
        "account": {"accountId": account["id"], "customerClass": account["customer_class"],
                    "billCycle": account["bill_cycle"], "division": account["division"]},
        "division": account["division"], "mainContact": account["main_person_id"],
        "premiseId": sa["premise_id"], "masterExternalId": sa["master_sa_id"],
        "spLinks": link_documents, "servicePoints": point_documents,
    }


def document_json(document: Mapping[str, Any]) -> bytes:
    """The document's compact JSON, by pydantic's serializer as the wire models write it: what
    :func:`document_fingerprint` hashes and :func:`encode_document` stamps, made once for
    both."""
    return to_json(document)


def document_fingerprint(document: Mapping[str, Any], encoded: bytes | None = None) -> str:
    """:func:`~sync.mapping.messages.snapshot_fingerprint` of the message ``document`` is;
    ``encoded``: its :func:`document_json`, when made already."""
    return hashlib.sha256(to_json(document) if encoded is None else encoded).hexdigest()


def encode_document(document: Mapping[str, Any], delivery: Delivery,
                    encoded: bytes | None = None) -> bytes:
    """:func:`~sync.mapping.codec.encode` of the message ``document`` is, with ``delivery``;
    ``encoded``: its :func:`document_json`, when made already.

    The wire models put the delivery fields after ``schemaVersion`` and ``externalId``, the
    document's first two keys, so they are spliced into the document's JSON there: the
    document is not copied and encoded a second time."""
    text = to_json(document) if encoded is None else encoded
    keys = iter(document)
    first, second = next(keys), next(keys)
    head = to_json({first: document[first], second: document[second]})[:-1]
    if not text.startswith(head):
        raise ValueError("encoded is not the document's JSON")
    stamp = to_json({"version": delivery.version, "syncRequestId": delivery.sync_request_id,
                     "eventTime": delivery.event_time})
    return b"".join((head, b",", stamp[1:-1], text[len(head):]))
