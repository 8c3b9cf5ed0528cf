"""How an answer from MDM moves a sync request (``ack_verdict``), and what a discarded request
that was published all the same leaves to do (``take_back``): pure rules."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.ccb.sync_requests import (
    AckVerdict,
    RequestStatus,
    SyncError,
    SyncRequestState,
    TakeBack,
    ack_verdict,
    take_back,
    too_large_error,
)

AT = dt.datetime(2025, 3, 3, 12, 0, tzinfo=dt.UTC)
REJECTED = (SyncError(code="D2-VALUSMC", path="spLinks[0].spId", message="no kWh component"),)


def request(state: SyncRequestState, version: int = 2, *, sent: bool = False,
            request_id: str = "SR-1") -> RequestStatus:
    return RequestStatus(request_id, 1, "SA", "SA-1", state, version, "f" * 64,
                         AT if sent else None, (), 0)


def verdict(of: RequestStatus, outcome: str, version: int = 2) -> AckVerdict:
    return ack_verdict(of, version, outcome, REJECTED if outcome == "ERROR" else (), 3)


@pytest.mark.parametrize("outcome", ["SYNCHRONIZED", "DUPLICATE"])
def test_step_3_0_mdm_applying_a_discarded_request_never_recorded_sent_is_no_stale_answer(
        outcome: str) -> None:
    assert verdict(request(SyncRequestState.DISCARDED), outcome) \
        is AckVerdict.APPLIED_DISCARDED


@pytest.mark.parametrize(("of", "outcome", "version"), [
    (request(SyncRequestState.DISCARDED), "ERROR", 2),  # MDM did not apply it
    (request(SyncRequestState.DISCARDED, sent=True), "SYNCHRONIZED", 2),  # dealt with
    (request(SyncRequestState.DISCARDED), "ERROR", 1),  # an earlier version MDM refused
    (request(SyncRequestState.DISCARDED, sent=True), "SYNCHRONIZED", 1),  # recorded sent
    (request(SyncRequestState.PENDING), "ERROR", 1),
    (request(SyncRequestState.SYNCHRONIZED, sent=True), "DUPLICATE", 2),
    (request(SyncRequestState.SENT, sent=True), "SYNCHRONIZED", 1),
], ids=["error", "publication-recorded", "earlier-version-refused",
        "earlier-version-recorded-sent", "pending-earlier-version-refused", "settled",
        "refreshed"])
def test_step_3_0_other_answers_about_requests_that_moved_on_stay_stale(
        of: RequestStatus, outcome: str, version: int) -> None:
    assert verdict(of, outcome, version) is AckVerdict.STALE


@pytest.mark.parametrize("state", [SyncRequestState.PENDING, SyncRequestState.DISCARDED])
@pytest.mark.parametrize("outcome", ["SYNCHRONIZED", "DUPLICATE"])
def test_step_3_0_mdm_applying_an_earlier_version_never_recorded_sent_is_no_stale_answer(
        state: SyncRequestState, outcome: str) -> None:
    """Published, refreshed by a newer change before the relay recorded it, and (perhaps)
    discarded by an undo: MDM holds the earlier version, which CCB no longer has."""
    assert verdict(request(state, version=3), outcome, version=2) \
        is AckVerdict.APPLIED_EARLIER_VERSION
    # A later version than the request's is no proof of anything: stale.
    assert verdict(request(state, version=3), outcome, version=4) is AckVerdict.STALE


def test_answers_for_the_current_version_still_settle_requests() -> None:
    assert verdict(request(SyncRequestState.SENT, sent=True), "SYNCHRONIZED") \
        is AckVerdict.SYNCHRONIZED
    assert verdict(request(SyncRequestState.PENDING), "DUPLICATE") is AckVerdict.SYNCHRONIZED
    assert verdict(request(SyncRequestState.SENT, sent=True), "ERROR") is AckVerdict.ERROR


def test_step_3_0_a_discarded_request_published_alone_is_recorded_and_the_entity_queued() -> None:
    assert take_back([]) is TakeBack.RECORD_SENT_AND_QUEUE
    # Later requests that never reached the topic change nothing.
    assert take_back([request(SyncRequestState.DISCARDED, 3, request_id="SR-2")]) \
        is TakeBack.RECORD_SENT_AND_QUEUE


def test_step_3_0_a_newer_pending_request_carries_the_current_state() -> None:
    assert take_back([request(SyncRequestState.PENDING, 3, request_id="SR-2")]) \
        is TakeBack.RECORD_SENT


@pytest.mark.parametrize("later", [
    request(SyncRequestState.SENT, 3, sent=True, request_id="SR-2"),
    request(SyncRequestState.SYNCHRONIZED, 3, request_id="SR-2"),  # answered before marked
    request(SyncRequestState.ERROR, 3, sent=True, request_id="SR-2"),
    request(SyncRequestState.DISCARDED, 3, sent=True, request_id="SR-2"),  # taken back itself
], ids=["sent", "synchronized", "error", "discarded-published"])
def test_step_3_0_a_newer_published_request_leaves_nothing_to_do(later: RequestStatus) -> None:
    assert take_back([later, request(SyncRequestState.PENDING, 4, request_id="SR-3")]) \
        is TakeBack.NOTHING


def test_step_3_0_a_newer_request_set_aside_as_too_large_never_reached_the_topic() -> None:
    # An error MDM answered before its publication was recorded did reach the topic; one
    # the broker refused as too large did not, so the entity's current state is queued.
    answered = RequestStatus("SR-2", 2, "SA", "SA-1", SyncRequestState.ERROR, 3, "f" * 64,
                             None, REJECTED, 0)
    refused = RequestStatus("SR-2", 2, "SA", "SA-1", SyncRequestState.ERROR, 3, "f" * 64,
                            None, (too_large_error("a record is larger than 600 bytes"),), 0)
    assert take_back([answered]) is TakeBack.NOTHING
    assert take_back([refused]) is TakeBack.RECORD_SENT_AND_QUEUE
    assert refused.errors[0].code == "SYNC-TOO-LARGE"
