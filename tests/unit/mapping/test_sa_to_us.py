"""Sync message -> MDM command, applied by MDM's own apply, and the acknowledgement back."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.config.admin import load_admin_config
from sync.mapping.codec import decode_acknowledgement, encode
from sync.mapping.messages import AckOutcome, EntityType, SaSyncMessage
from sync.mapping.sa_to_us import (
    acknowledgement_for,
    command_for,
    contact_command,
    service_point_commands,
    usage_subscription_command,
    wire_path,
)
from sync.mdm.commands import UpsertContact, UpsertUsageSubscription
from sync.mdm.memory import InMemoryMdmStore
from sync.mdm.model import ContactPhone, MeasuringComponent, UsageFlag, UsSpLink, UsStatus
from tests.unit.mapping.builders import (
    EVENT_TIME,
    START,
    person_message,
    relationship_message,
    sa_message,
)

ADMIN = load_admin_config()
PROCESSED = EVENT_TIME + dt.timedelta(seconds=2)
END = dt.date(2025, 4, 1)


@pytest.fixture
def mdm() -> InMemoryMdmStore:
    return InMemoryMdmStore(ADMIN)


def us_command_of(message: SaSyncMessage) -> UpsertUsageSubscription:
    command = usage_subscription_command(message)
    assert command is not None
    return command


def test_sa_message_fields_reach_the_us_command() -> None:
    message = sa_message(sa_status="30", end=END, time_zone="America/Chicago",
                         master_external_id="SA-0", sp_ids=("SP-1", "SP-2"))
    command = us_command_of(message)
    assert command.external_id == "SA-1"
    assert command.external_account_id == "ACCT-1"
    assert command.us_type == "E-RES-US"
    assert command.sa_status == "30"
    assert (command.start_date, command.end_date) == (START, END)
    assert command.time_zone == "America/Chicago"
    assert command.main_contact_id == "PER-1"
    assert command.division == "MAIN"
    assert command.master_external_id == "SA-0"
    assert command.sp_links == (UsSpLink(sp_id="SP-1", start=START, stop=END),
                                UsSpLink(sp_id="SP-2", start=START, stop=END))
    assert [sp.sp_id for sp in command.service_points] == ["SP-1", "SP-2"]
    assert command.service_points[0].measuring_components == (
        MeasuringComponent(mc_id="SP-1-MC", mc_class="kWh", channel="direct"),)
    assert command.service_points[0].meter_id == "M-SP-1"
    assert (command.version, command.sync_request_id) == (1, "SR-SA-1-1")
    assert command.usage_groups is None  # MDM derives them from the US type


def test_usage_flag_and_percent_travel_to_the_link() -> None:
    message = sa_message()
    link = message.sp_links[0].model_copy(update={"usage_flag": "-", "use_percent": 40.0})
    command = us_command_of(message.model_copy(update={"sp_links": (link,)}))
    assert command.sp_links[0].usage_flag is UsageFlag.MINUS
    assert command.sp_links[0].use_percent == 40.0


@pytest.mark.parametrize(("sa_status", "end", "us_status"), [
    ("10", None, UsStatus.PENDING),
    ("20", None, UsStatus.ACTIVE),
    ("30", END, UsStatus.ACTIVE),
    ("40", END, UsStatus.INACTIVE),
    ("50", None, UsStatus.ACTIVE),
    ("60", END, UsStatus.INACTIVE),
    ("70", START, UsStatus.INACTIVE),
])
def test_each_sa_status_maps_to_its_us_status(
    mdm: InMemoryMdmStore, sa_status: str, end: dt.date | None, us_status: UsStatus,
) -> None:
    command = us_command_of(sa_message(sa_status=sa_status, end=end))
    assert command.us_status is us_status
    decision = mdm.apply(command)
    assert decision.applied, decision.summary()
    stored = mdm.get_us("SA-1")
    assert stored is not None
    assert stored.status is us_status
    assert stored.end_date == end


def test_sa_without_a_us_type_gives_no_command_and_is_synchronized() -> None:
    """A deposit SA's type maps to no US type: nothing to hold in MDM."""
    message = sa_message("SA-DEP", sa_type="DEP-RES", us_type=None, sp_ids=())
    assert command_for(message) is None
    ack = acknowledgement_for(message, None, PROCESSED)
    assert ack.outcome is AckOutcome.SYNCHRONIZED
    assert ack.mdm_us_id is None
    assert ack.errors == ()
    assert (ack.entity_type, ack.entity_id, ack.version) == (EntityType.SA, "SA-DEP", 1)


def test_person_message_becomes_a_contact_mdm_accepts(mdm: InMemoryMdmStore) -> None:
    message = person_message(is_business=False)
    command = command_for(message)
    assert command == contact_command(message)
    assert isinstance(command, UpsertContact)
    assert command.phones == (ContactPhone(type="home", number="217-555-0100", primary=True),)
    decision = mdm.apply(command)
    assert decision.applied
    contact = mdm.get_contact("PER-1")
    assert contact is not None
    assert (contact.name, contact.email, contact.version) == ("TENANT,TOM", "tom@example.com", 1)
    ack = acknowledgement_for(message, decision, PROCESSED)
    assert ack.outcome is AckOutcome.SYNCHRONIZED
    assert ack.mdm_us_id is None
    assert ack.key == "PERSON:PER-1"


def test_relationship_message_needs_no_command() -> None:
    """MDM holds the master on the sub US, which the sub SA's own message carries."""
    message = relationship_message()
    assert command_for(message) is None
    ack = acknowledgement_for(message, None, PROCESSED)
    assert ack.outcome is AckOutcome.SYNCHRONIZED
    assert ack.entity_type is EntityType.SA_RELATIONSHIP


def test_service_point_commands_load_the_sps_on_their_own(mdm: InMemoryMdmStore) -> None:
    commands = service_point_commands(sa_message(sp_ids=("SP-1", "SP-2")))
    assert [command.sp_id for command in commands] == ["SP-1", "SP-2"]
    assert all(mdm.apply(command).applied for command in commands)
    stored = mdm.get_service_point("SP-2")
    assert stored is not None
    assert stored.measuring_components[0].mc_class == "kWh"


# --- acknowledgements ----------------------------------------------------------------------


def test_applied_is_synchronized_with_the_us_id(mdm: InMemoryMdmStore) -> None:
    message = sa_message()
    ack = acknowledgement_for(message, mdm.apply(us_command_of(message)), PROCESSED)
    assert ack.outcome is AckOutcome.SYNCHRONIZED
    assert ack.mdm_us_id == "SA-1"
    assert (ack.sync_request_id, ack.version, ack.processed_at) == ("SR-SA-1-1", 1, PROCESSED)
    assert decode_acknowledgement(encode(ack)) == ack


def test_same_version_again_is_a_duplicate(mdm: InMemoryMdmStore) -> None:
    message = sa_message()
    mdm.apply(us_command_of(message))
    ack = acknowledgement_for(message, mdm.apply(us_command_of(message)), PROCESSED)
    assert ack.outcome is AckOutcome.DUPLICATE
    assert ack.mdm_us_id == "SA-1"


def test_rejection_is_an_error_with_every_problem_in_wire_names(mdm: InMemoryMdmStore) -> None:
    message = sa_message(sa_status="40", end=END, time_zone="Mars/Olympus")
    late_stop = message.sp_links[0].model_copy(update={"stop_date": dt.date(2025, 5, 1)})
    message = message.model_copy(update={"sp_links": (late_stop,)})
    decision = mdm.apply(us_command_of(message))
    ack = acknowledgement_for(message, decision, PROCESSED)
    assert ack.outcome is AckOutcome.ERROR
    assert ack.mdm_us_id is None  # MDM never held this US
    assert len(ack.errors) == len(decision.errors) >= 2
    paths = {(error.code, error.path) for error in ack.errors}
    assert ("D2-USSPDTVAL", "spLinks[0].stopDate") in paths
    assert ("D2-VALUSTMZN", "timeZone") in paths
    assert mdm.get_us("SA-1") is None


def test_rejected_update_of_a_held_us_names_it(mdm: InMemoryMdmStore) -> None:
    mdm.apply(us_command_of(sa_message()))
    update = sa_message(version=2, us_type="G-RES-US")
    ack = acknowledgement_for(update, mdm.apply(us_command_of(update)), PROCESSED)
    assert ack.outcome is AckOutcome.ERROR
    assert ack.mdm_us_id == "SA-1"
    assert any(error.path == "usType" for error in ack.errors)


@pytest.mark.parametrize(("mdm_path", "wire"), [
    ("spLinks[3].start", "spLinks[3].startDate"),
    ("spLinks[0].stop", "spLinks[0].stopDate"),
    ("spLinks[0].spId", "spLinks[0].spId"),
    ("status", "saStatus"),
    ("timeZone", "timeZone"),
    ("usageGroups[0].end", "usageGroups[0].end"),
])
def test_mdm_paths_in_wire_names(mdm_path: str, wire: str) -> None:
    assert wire_path(mdm_path) == wire

