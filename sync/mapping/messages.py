"""The wire contract between CCB and MDM: sync messages and acknowledgements.

One topic carries every kind of sync message; ``entityType`` says which model a message is and
the message key is ``"<entityType>:<externalId>"`` so that per-entity ordering holds. Each
message is a full snapshot of its entity: the latest message per key is enough to rebuild MDM.

Field names on the wire are camelCase and follow the source integration where it has one
(``externalId`` is the SA id, ``externalAccountId`` the account id, ...). Models are frozen and
reject unknown fields: a message of a different shape is an error, never half-read. Python code
builds them by field name (``external_id=...``); the codec reads them by wire name only.

``schemaVersion`` is a literal: a reader refuses versions it does not know rather than guess.
A change that old readers cannot read is a new ``SCHEMA_VERSION`` and new schema files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

SCHEMA_VERSION: Literal[1] = 1

Id = Annotated[str, Field(min_length=1)]
# NaN and infinity have no JSON form; a read or a percentage is always a finite number.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
SaStatusCode = Literal["10", "20", "30", "40", "50", "60", "70"]
UsageFlagCode = Literal["+", "-", "check"]

# Wire fields that every reader must find, even though Python code gets them by default.
_ALWAYS_REQUIRED = ("schemaVersion", "entityType")


def _require_envelope(schema: dict[str, Any]) -> None:
    required = schema.setdefault("required", [])
    for name in _ALWAYS_REQUIRED:
        if name in schema.get("properties", {}) and name not in required:
            required.insert(0, name)


# The largest version a message may carry: the smallest integer column that stores one (a
# service point's or contact's version on PostgreSQL, 32 bits). A larger one is refused when the
# message is read, naming the field, rather than failing the MDM transaction that stores it.
MAX_VERSION = 2**31 - 1


class WireModel(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, validate_by_name=True,
        validate_by_alias=True, serialize_by_alias=True, json_schema_extra=_require_envelope,
        field_title_generator=lambda name, _info: name.replace("_", " ").capitalize(),
    )


class EntityType(StrEnum):
    SA = "SA"
    PERSON = "PERSON"
    SA_RELATIONSHIP = "SA_RELATIONSHIP"


# --- parts of an SA snapshot ----------------------------------------------------------------


class MeasuringComponentSnapshot(WireModel):
    mc_id: Id
    mc_class: str = Field(description="unit class, e.g. kWh, therm, gallon")
    channel: str = "direct"


class ServicePointSnapshot(WireModel):
    """A service point the SA links, with the measuring components MDM validates against."""

    sp_id: Id
    sp_type: str
    premise_id: str | None = None
    time_zone: str | None = None
    meter_id: str | None = None
    measuring_components: tuple[MeasuringComponentSnapshot, ...] = ()
    version: int = Field(ge=1, le=MAX_VERSION, description="CCB version of the service point")


class SpLinkSnapshot(WireModel):
    """An SA/SP link: the SP's usage belongs to the SA from ``startDate`` until ``stopDate``
    (exclusive; null while open)."""

    sp_id: Id
    start_date: dt.date
    stop_date: dt.date | None = None
    start_read: FiniteFloat | None = None
    stop_read: FiniteFloat | None = None
    usage_flag: UsageFlagCode = "+"
    use_percent: FiniteFloat = Field(default=100.0, ge=0, le=100)


class AccountAttributes(WireModel):
    account_id: Id
    customer_class: str
    bill_cycle: str
    division: str


class PhoneSnapshot(WireModel):
    type: str = "home"
    number: str
    primary: bool = False


# --- sync messages ---------------------------------------------------------------------------


class _SyncEnvelope(WireModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    external_id: Id = Field(description="CCB id of the entity (for an SA: the SA id)")
    version: int = Field(ge=1, le=MAX_VERSION, description=(
        "grows with every snapshot of this entity; MDM skips a version it has already applied"))
    sync_request_id: Id
    event_time: AwareDatetime = Field(description="when the change happened in CCB")

    @property
    def key(self) -> str:
        """The message key on the sync topic: one key per entity, so per-entity order."""
        entity_type: str = getattr(self, "entity_type")  # noqa: B009
        return f"{entity_type}:{self.external_id}"


class SaSyncMessage(_SyncEnvelope):
    """A service agreement as CCB sees it now, with everything MDM needs for its usage
    subscription."""

    entity_type: Literal["SA"] = "SA"
    sa_type: str
    us_type: str | None = Field(description=(
        "the SA type's mapped US type; null when the SA type maps to none (no US in MDM)"))
    sa_status: SaStatusCode = Field(description=(
        "10 pending start, 20 active, 30 pending stop, 40 stopped, 50 reactivated, 60 closed, "
        "70 canceled"))
    start_date: dt.date
    end_date: dt.date | None = None
    time_zone: str | None = Field(default=None, description=(
        "the premise's (else the first SP's) time zone; null lets MDM default it"))
    external_account_id: Id
    account: AccountAttributes
    division: str | None = None
    main_contact: str | None = Field(default=None, description=(
        "person id of the account's main person; details travel in PERSON messages"))
    premise_id: str | None = None
    master_external_id: str | None = Field(default=None, description="master SA id of a sub SA")
    sp_links: tuple[SpLinkSnapshot, ...] = ()
    service_points: tuple[ServicePointSnapshot, ...] = ()


class PersonSyncMessage(_SyncEnvelope):
    """A person: in MDM, the contact usage subscriptions name as main contact."""

    entity_type: Literal["PERSON"] = "PERSON"
    name: str
    is_business: bool = False
    phones: tuple[PhoneSnapshot, ...] = ()
    email: str | None = None


class SaRelationshipSyncMessage(_SyncEnvelope):
    """The master/sub relationship of an SA (``externalId`` is the sub SA)."""

    entity_type: Literal["SA_RELATIONSHIP"] = "SA_RELATIONSHIP"
    relationship_type: Literal["MASTER_SUB"] = "MASTER_SUB"
    master_external_id: str | None = Field(description="null once the SA has no master")
    start_date: dt.date
    end_date: dt.date | None = None


SyncMessage = SaSyncMessage | PersonSyncMessage | SaRelationshipSyncMessage

MESSAGE_TYPES: dict[EntityType, type[SyncMessage]] = {
    EntityType.SA: SaSyncMessage,
    EntityType.PERSON: PersonSyncMessage,
    EntityType.SA_RELATIONSHIP: SaRelationshipSyncMessage,
}


# --- acknowledgements ------------------------------------------------------------------------


class AckOutcome(StrEnum):
    SYNCHRONIZED = "SYNCHRONIZED"
    ERROR = "ERROR"
    DUPLICATE = "DUPLICATE"


class AckError(WireModel):
    code: str = Field(description="the validation (algorithm code) that failed")
    path: str = Field(description="wire path of the field, e.g. spLinks[1].stopDate")
    message: str


class Acknowledgement(WireModel):
    """MDM's answer to one sync message."""

    schema_version: Literal[1] = SCHEMA_VERSION
    sync_request_id: Id
    entity_type: EntityType
    entity_id: Id
    version: int = Field(ge=1, le=MAX_VERSION)
    outcome: AckOutcome
    errors: tuple[AckError, ...] = ()
    mdm_us_id: str | None = Field(default=None, description=(
        "the usage subscription MDM holds for the SA; null when there is none"))
    processed_at: AwareDatetime

    @property
    def key(self) -> str:
        return f"{self.entity_type.value}:{self.entity_id}"


# --- snapshot equality ---------------------------------------------------------------------

# What changes between two sends of the same state; equality of snapshots ignores it.
_DELIVERY_FIELDS = frozenset({"sync_request_id", "event_time", "version"})


def snapshot_fingerprint(message: SyncMessage) -> str:
    """sha256 of the snapshot's wire JSON (compact, the models' field order, as
    :func:`~sync.mapping.codec.encode` writes it) without ``version``, ``syncRequestId`` and
    ``eventTime``: equal fingerprints mean MDM would receive the same state.

    The field order is fixed by the models and every list of a snapshot is sorted, so one
    state has one text. Sorting the keys as well, as earlier versions did, cost a second,
    slower JSON encoding per snapshot (a stored fingerprint of that form never equals one of
    this form: an unchanged snapshot is sent once more after the upgrade)."""
    content = message.model_dump_json(by_alias=True, exclude=set(_DELIVERY_FIELDS))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


# --- JSON Schema files ---------------------------------------------------------------------

SCHEMA_FILES: dict[str, type[WireModel]] = {
    f"sa-sync.v{SCHEMA_VERSION}.json": SaSyncMessage,
    f"person-sync.v{SCHEMA_VERSION}.json": PersonSyncMessage,
    f"sa-relationship-sync.v{SCHEMA_VERSION}.json": SaRelationshipSyncMessage,
    f"acknowledgement.v{SCHEMA_VERSION}.json": Acknowledgement,
}


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_documents() -> dict[str, str]:
    """File name -> JSON Schema text, byte-stable (sorted keys, trailing newline)."""
    documents = {}
    for name, model in SCHEMA_FILES.items():
        schema = {"$schema": JSON_SCHEMA_DIALECT, "$id": name,
                  **model.model_json_schema(by_alias=True)}
        documents[name] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return documents
