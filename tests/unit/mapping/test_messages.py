"""The wire models: keys, immutability, strictness and snapshot fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from pydantic import ValidationError

from sync.mapping.messages import (
    Acknowledgement,
    AckOutcome,
    EntityType,
    SpLinkSnapshot,
    snapshot_fingerprint,
)
from tests.unit.mapping.builders import (
    EVENT_TIME,
    START,
    person_message,
    relationship_message,
    sa_message,
)


def test_message_key_is_entity_type_and_id() -> None:
    assert sa_message("SA-7").key == "SA:SA-7"
    assert person_message("PER-3").key == "PERSON:PER-3"
    assert relationship_message("SA-9").key == "SA_RELATIONSHIP:SA-9"
    ack = Acknowledgement(sync_request_id="SR-1", entity_type=EntityType.PERSON,
                          entity_id="PER-3", version=1, outcome=AckOutcome.SYNCHRONIZED,
                          processed_at=EVENT_TIME)
    assert ack.key == "PERSON:PER-3"


def test_messages_are_frozen() -> None:
    message = sa_message()
    with pytest.raises(ValidationError):
        message.sa_status = "40"  # type: ignore[misc]


def test_unknown_fields_are_refused_in_code_too() -> None:
    with pytest.raises(ValidationError, match="meter_read"):
        SpLinkSnapshot(sp_id="SP-1", start_date=START, meter_read=5)  # type: ignore[call-arg]


@pytest.mark.parametrize("fields", [
    {"start_read": float("nan")}, {"stop_read": float("inf")}, {"use_percent": 100.5},
    {"usage_flag": "x"},
])
def test_link_values_without_a_wire_form_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SpLinkSnapshot(sp_id="SP-1", start_date=START, **fields)  # type: ignore[arg-type]


def test_unknown_sa_status_and_naive_event_time_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"sa_status|saStatus"):
        sa_message(sa_status="80")
    with pytest.raises(ValidationError, match=r"event_time|eventTime"):
        sa_message(event_time=dt.datetime(2025, 3, 1, 9, 30))


# --- fingerprints ----------------------------------------------------------------------------


def test_fingerprint_ignores_delivery_fields() -> None:
    first = sa_message(version=1, sync_request_id="SR-1")
    resent = sa_message(version=2, sync_request_id="SR-2",
                        event_time=EVENT_TIME + dt.timedelta(hours=5))
    assert snapshot_fingerprint(first) == snapshot_fingerprint(resent)


@pytest.mark.parametrize("change", [
    {"sa_status": "30", "end": dt.date(2025, 4, 1)},
    {"main_contact": "PER-2"},
    {"time_zone": "America/Chicago"},
    {"sp_ids": ("SP-1", "SP-2")},
    {"master_external_id": "SA-0"},
])
def test_fingerprint_changes_with_the_state(change: dict[str, object]) -> None:
    assert snapshot_fingerprint(sa_message(**change)) != snapshot_fingerprint(sa_message())  # type: ignore[arg-type]


def test_fingerprint_sees_a_link_read() -> None:
    message = sa_message()
    read = message.model_copy(update={"sp_links": (
        message.sp_links[0].model_copy(update={"stop_read": 1500.0}),)})
    assert snapshot_fingerprint(read) != snapshot_fingerprint(message)


def test_fingerprint_is_sha256_of_the_wire_json_without_delivery_fields() -> None:
    """The models' field order, no spaces, wire names, delivery fields left out."""
    message = person_message(phones=(), email=None)
    content = ('{"schemaVersion":1,"externalId":"PER-1","entityType":"PERSON",'
               '"name":"TENANT,TOM","isBusiness":false,"phones":[],"email":null}')
    assert snapshot_fingerprint(message) == hashlib.sha256(content.encode()).hexdigest()


def test_fingerprint_of_a_relationship_sees_its_master() -> None:
    assert (snapshot_fingerprint(relationship_message("X"))
            != snapshot_fingerprint(relationship_message("X", master_external_id="SA-2")))
