"""STOPUPL's set-based path (step 1.1, many at once) on SQLite and PostgreSQL: over the same
mixed upload, a run with it and a run forced through the general rules (``request_stop_row``)
leave the same database, row for row: every CCB table (SAs with their audit logs, links, field
activities, customer contacts, accounts and their persons, the landlord's reversion SAs ...),
the change log's entities in order and by unit, and the sync requests (ids, queue order,
versions, fingerprints, payloads, notes) and sync entities; and the reports are the same (rows
changed, rows refused and why). A second and a third upload on top (fresh rows, then the first
rows again, all refused now) leave the same database too."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from sync.batches import BatchReport, JobContext, load_jobs
from sync.batches.ccb_jobs import StopUploadJob
from sync.ccb.batches import StopRequestRow
from sync.ccb.changes import SA
from sync.ccb.commands import CancelPendingStop, RequestStop
from sync.ccb.model import (
    Account,
    Address,
    Entity,
    LandlordAgreement,
    MeasuringComponent,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    SeasonalPreference,
    ServiceAgreement,
    ServicePoint,
)
from sync.ccb.ports import CcbView
from sync.ccb.stop_start import cancel_pending_stop, request_stop
from sync.ccb.sync_requests import SyncRequestState
from sync.clock import FixedClock
from sync.config.admin import AdminConfig, load_admin_config
from sync.storage.ccb import SqlCcbStore
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.ccb_schema import id_sequences
from sync.storage.ccb_view import SqlCcbView
from sync.storage.outbox import SqlOutbox
from sync.storage.stop_upload_fast import SqlStopUploadFastPath
from tests.contract.test_batch_runner import _sql_store
from tests.contract.test_saact_fast_path import TODAY, _database, _differences

ADMIN = load_admin_config()
SINCE = dt.date(2024, 6, 1)
STOP = TODAY + dt.timedelta(days=14)
TOMORROW = TODAY + dt.timedelta(days=1)
ADDRESS = Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701")


class _Customer:
    """Entities of one customer: person, account, premise, service point (W-RES unless told),
    and the SAs added with :meth:`sa`, each linked to the customer's service point."""

    def __init__(self, key: str, found: list[Entity], *, time_zone: str | None = None,
                 sp_type: str = "W-RES", landlord_agreement_id: str | None = None) -> None:
        self.key = key
        self.account = f"A-{key}"
        self.premise = f"PR-{key}"
        self.sp = f"SP-{key}"
        self.found = found
        self.time_zone = time_zone
        found += [Person(id=f"P-{key}", name=f"CUSTOMER,{key}"),
                  Account(id=self.account, main_person_id=f"P-{key}"),
                  Premise(id=self.premise, address=ADDRESS, time_zone=time_zone,
                          landlord_agreement_id=landlord_agreement_id)]
        self.service_point(self.sp, sp_type)

    def service_point(self, sp_id: str, sp_type: str = "W-RES",
                      premise_id: str | None = None) -> str:
        """Another service point of the customer (at its premise unless told)."""
        self.found.append(ServicePoint(
            id=sp_id, premise_id=premise_id or self.premise, sp_type=sp_type,
            time_zone="America/Denver" if self.time_zone is None else None,
            meter_id=f"M-{sp_id}",
            measuring_components=(MeasuringComponent(id=f"MC-{sp_id}", mc_class="gallon"),)))
        return sp_id

    def sa(self, sa_id: str, status: SaStatus = SaStatus.ACTIVE, *, start: dt.date = SINCE,
           end: dt.date | None = None, sa_type: str = "W-RES", master: str | None = None,
           read: float | None = None, sp_ids: Sequence[str] = (), premise_id: str | None = None,
           account_id: str | None = None) -> ServiceAgreement:
        sa = ServiceAgreement(id=sa_id, account_id=account_id or self.account, sa_type=sa_type,
                              status=status, start_date=start, end_date=end,
                              premise_id=premise_id or self.premise, master_sa_id=master)
        self.found.append(sa)
        for number, sp_id in enumerate(sp_ids or (self.sp,)):
            self.found.append(SaSpLink(id=f"L-{sa_id}" + (f"-{number}" if number else ""),
                                       sa_id=sa_id, sp_id=sp_id, start_date=start,
                                       stop_date=end, start_read=read))
        return sa


def _mixed() -> list[Entity]:
    """Customers whose rows the set-based path takes, and customers whose rows must go the
    general way (with the reason in the comment)."""
    found: list[Entity] = []
    # Set-based: one active SA each; the premise's time zone or the SP's; two SPs of its own;
    # a link with a start read.
    _Customer("F0", found).sa("SA-F0")
    _Customer("F1", found, time_zone="America/Chicago").sa("SA-F1")
    two_sps = _Customer("F2", found)
    two_sps.sa("SA-F2", sp_ids=(two_sps.sp, two_sps.service_point("SP-F2B")))
    _Customer("F3", found).sa("SA-F3", read=12.5)
    _Customer("F4", found, time_zone="America/New_York").sa("SA-F4")  # contact by email
    _Customer("F5", found).sa("SA-F5", start=TODAY - dt.timedelta(days=3))  # stop tomorrow
    # General: the row names the premise, not the SA.
    _Customer("PR", found).sa("SA-PR")
    # General: one row for two SAs of one account (two SPs at its premise).
    two = _Customer("TWO", found)
    two.sa("SA-TWO1")
    two.sa("SA-TWO2", sp_ids=(two.service_point("SP-TWO2"),))
    # General within one chunk (two rows of one account, at two premises of their own), each
    # set-based alone.
    pair = _Customer("PAIR", found)
    pair.sa("SA-PAIR1")
    found.append(Premise(id="PR-PAIR2", address=ADDRESS))
    pair.sa("SA-PAIR2", premise_id="PR-PAIR2",
            sp_ids=(pair.service_point("SP-PAIR2", premise_id="PR-PAIR2"),))
    # General within one chunk: two rows for one SA (the second is refused: pending stop).
    _Customer("DUP", found).sa("SA-DUP")
    # Errors: another account's SA; a pending start; a stop before the start; back-dated.
    _Customer("OA", found)
    _Customer("OB", found).sa("SA-OB")
    _Customer("PS", found).sa("SA-PS", SaStatus.PENDING_START, start=TOMORROW)
    _Customer("BS", found).sa("SA-BS", start=TODAY - dt.timedelta(days=10))
    _Customer("BD", found).sa("SA-BD")
    # General: stopped at once (stop dated today), with its consequences.
    _Customer("TD", found).sa("SA-TD")
    # General: a master SA whose sub SA (another account's) follows its stop.
    _Customer("MS", found).sa("SA-MS")
    _Customer("SUB", found).sa("SA-SUB", master="SA-MS")
    # General: fieldwork required (a stop field activity).
    _Customer("E", found, sp_type="E-RES").sa("SA-E", sa_type="E-RES")
    # General: a tenant at a premise with a landlord agreement (a reversion SA starts).
    found += [Person(id="P-LORD", name="LANDLORD,LEO"),
              Account(id="A-LORD", main_person_id="P-LORD"),
              LandlordAgreement(id="LA-1", landlord_person_id="P-LORD",
                                landlord_account_id="A-LORD",
                                preferences=(SeasonalPreference(service_type="W"),))]
    _Customer("LL", found, landlord_agreement_id="LA-1").sa("SA-LL")
    # General: the tenant's SP is shared with a new tenant's pending start after the stop.
    shared = _Customer("SH", found)
    shared.sa("SA-SH")
    _Customer("NT", found)
    shared.sa("SA-NT", SaStatus.PENDING_START, start=STOP + dt.timedelta(days=5),
              account_id="A-NT")
    # Errors: an unknown contact method; an unknown account (the SA is fine).
    _Customer("PG", found).sa("SA-PG")
    _Customer("UA", found).sa("SA-UA")
    # Set-based: earlier tenants at the premise and SP are history: one stopped the day this
    # SA started, one canceled (it covers nothing, whatever its dates).
    _Customer("H1O", found)
    history = _Customer("H1", found)
    history.sa("SA-H1OLD", SaStatus.STOPPED, start=dt.date(2023, 1, 1), end=SINCE,
               account_id="A-H1O")
    history.sa("SA-H1CAN", SaStatus.CANCELED, start=SINCE + dt.timedelta(days=10),
               account_id="A-H1O")
    history.sa("SA-H1")
    # Error: an earlier tenant's stopped SA overlaps this one by a day (bad history), which
    # the general rules' last check refuses.
    _Customer("HXO", found)
    overlapped = _Customer("HX", found)
    overlapped.sa("SA-HXOLD", SaStatus.STOPPED, start=dt.date(2023, 1, 1),
                  end=SINCE + dt.timedelta(days=1), account_id="A-HXO")
    overlapped.sa("SA-HX")
    # Left alone by the first upload: the second upload's rows (set-based, and two rows of
    # one account in a chunk without errors: general).
    for key in ("L0", "L1", "L2"):
        _Customer(key, found).sa(f"SA-{key}")
    later_pair = _Customer("LP", found)
    later_pair.sa("SA-LP1")
    found.append(Premise(id="PR-LP2", address=ADDRESS))
    later_pair.sa("SA-LP2", premise_id="PR-LP2",
                  sp_ids=(later_pair.service_point("SP-LP2", premise_id="PR-LP2"),))
    return found


def _row(number: int, key: str, stop: dt.date = STOP, *, sa_ids: Sequence[str] | None = None,
         premise_id: str | None = None, contact_method: str | None = None,
         account_id: str | None = None) -> StopRequestRow:
    return StopRequestRow(number, account_id or f"A-{key}", stop,
                          (f"SA-{key}",) if sa_ids is None else tuple(sa_ids), premise_id,
                          contact_method)


def _first_upload() -> list[StopRequestRow]:
    """Rows 5-8 are one chunk of 4: two rows of one account, two rows of one SA."""
    return [
        _row(1, "F0"),
        _row(2, "F1"),
        _row(3, "F2"),
        _row(4, "PR", sa_ids=(), premise_id="PR-PR"),
        _row(5, "PAIR", sa_ids=("SA-PAIR1",)),
        _row(6, "PAIR", STOP + dt.timedelta(days=2), sa_ids=("SA-PAIR2",)),
        _row(7, "DUP"),
        _row(8, "DUP", STOP + dt.timedelta(days=7)),
        _row(9, "F3"),
        _row(10, "TWO", sa_ids=("SA-TWO1", "SA-TWO2")),
        _row(11, "OA", sa_ids=("SA-OB",)),
        _row(12, "PS"),
        _row(13, "F4", contact_method="email"),
        _row(14, "BS", TODAY - dt.timedelta(days=20)),
        _row(15, "BD", TODAY - dt.timedelta(days=90)),
        _row(16, "TD", TODAY),
        _row(17, "F5", TOMORROW),
        _row(18, "MS"),
        _row(19, "E"),
        _row(20, "LL"),
        _row(21, "SH"),
        _row(22, "PG", contact_method="pigeon"),
        _row(23, "UA", account_id="A-NOPE"),
        _row(24, "H1"),
        _row(25, "HX"),
    ]


# The first upload's rows the set-based path takes in any chunk, and those it takes only alone
# (a chunk's retry row by row after one of its rows failed).
FIRST_ALWAYS = frozenset({"1", "2", "3", "9", "13", "17", "24"})
FIRST_ALONE = frozenset({"5", "6", "7"})


def _second_upload() -> list[StopRequestRow]:
    """Rows 1-4 are one chunk of 4 without errors; two of them are one account's."""
    return [
        _row(1, "L0", STOP + dt.timedelta(days=3)),
        _row(2, "L1", contact_method="web"),
        _row(3, "LP", sa_ids=("SA-LP1",)),
        _row(4, "LP", sa_ids=("SA-LP2",), contact_method="letter"),
        _row(5, "L2", TOMORROW),
    ]


SECOND_ALWAYS = frozenset({"1", "2", "5"})


class _GeneralOnly(SqlBatchQueries):
    stop_upload_fast_path = None  # type: ignore[assignment]


class _Counting(SqlBatchQueries):
    """Records, for every chunk (and every retried row), the row keys the set-based path
    takes."""

    calls: list[tuple[list[str], list[str]]]

    def stop_upload_fast_path(self, admin: AdminConfig, today: dt.date, user: str,
                              rows: Mapping[str, StopRequestRow]) -> SqlStopUploadFastPath:
        path = super().stop_upload_fast_path(admin, today, user, rows)
        calls = self.calls
        shortcuts = path.shortcuts

        def counted(view: CcbView, item_ids: Sequence[str]) -> Any:
            found = shortcuts(view, item_ids)
            calls.append((list(item_ids), sorted(found, key=int)))
            return found

        path.shortcuts = counted  # type: ignore[method-assign]
        return path


def _expected_calls(calls: Sequence[tuple[list[str], list[str]]], always: frozenset[str],
                    alone: frozenset[str]) -> list[tuple[list[str], list[str]]]:
    return [(item_ids, [key for key in item_ids
                        if key in always or (len(item_ids) == 1 and key in alone)])
            for item_ids, _ in calls]


def _run(store: SqlCcbStore, queries: SqlBatchQueries, chunk_size: int,
         rows: Sequence[StopRequestRow]) -> BatchReport:
    job = load_jobs().get("STOPUPL")
    assert isinstance(job, StopUploadJob)
    return job.run_rows(JobContext(admin=ADMIN, clock=FixedClock(TODAY), store=store,
                                   queries=queries, chunk_size=chunk_size), rows)


def _report(report: BatchReport) -> dict[str, Any]:
    return {"examined": report.examined, "changed": report.changed,
            "todos_raised": report.todos_raised, "details": report.details,
            "errors": [(error.entity_id, error.reason) for error in report.errors]}


def _spot_checks(view: SqlCcbView) -> dict[str, Any]:
    """What some rows did, in the business's terms."""
    sas = {sa_id: view.sa(sa_id) for sa_id in (
        "SA-F0", "SA-F2", "SA-F5", "SA-TD", "SA-SUB", "SA-LL", "SA-SH", "SA-NT")}
    links = {sa_id: [(link.sp_id, link.stop_date) for link in view.links_of_sa(sa_id)]
             for sa_id in ("SA-F0", "SA-F2", "SA-F3")}
    contacts = {key: [(contact.contact_type, contact.method, contact.account_id,
                       contact.premise_id) for contact in view.contacts_of_person(f"P-{key}")]
                for key in ("F0", "F4", "PG")}
    return {
        "statuses": {sa_id: None if sa is None else (sa.status, sa.end_date)
                     for sa_id, sa in sas.items()},
        "links": links,
        "contacts": contacts,
        "stop_fas": [(fa.purpose.value, fa.fa_type) for fa in
                     view.field_activities_of_sa("SA-E")],
        "landlord_sas": sorted((sa.status, sa.start_date, sa.created_by.reciprocal_sa_id)
                               for sa in view.sas_of_account("A-LORD")),
        "account_td_final_bill": getattr(view.account("A-TD"), "final_bill_pending", None),
    }


def _uploads(url: str, queries_of: type[SqlBatchQueries], chunk_size: int,
             calls: list[tuple[list[str], list[str]]]) -> dict[str, Any]:
    """The three uploads on a fresh database: reports, the database after the first and after
    the last, the spot checks, and the set-based path's picks per upload."""
    store = _sql_store(url, _mixed())
    outbox = SqlOutbox(store, ADMIN)
    _queue_a_request(store)
    # The set-based row refreshes that pending request, as the general one does.
    assert [request.state for request in outbox.find(entity_type=SA, entity_id="SA-F1")] == [
        SyncRequestState.PENDING]
    queries = queries_of(store.engine)
    try:
        found: dict[str, Any] = {"calls": []}
        for name, rows in (("first", _first_upload()), ("second", _second_upload()),
                           ("again", _first_upload())):
            calls.clear()
            if isinstance(queries, _Counting):
                queries.calls = calls
            found[name] = _report(_run(store, queries, chunk_size, rows))
            found["calls"].append(list(calls))
            if name == "first":
                found["after_first"] = _everything(store)
                found["spots"] = store.read(_spot_checks)
                found["f1_requests"] = [
                    (request.state, json.loads(request.payload)["saStatus"])
                    for request in outbox.find(entity_type=SA, entity_id="SA-F1")]
        found["after_all"] = _everything(store)
        return found
    finally:
        store.dispose()


def _queue_a_request(store: SqlCcbStore) -> None:
    """SA-F1 (a set-based row of the first upload) with a sync request still pending: a stop
    requested and canceled before the upload, both by a CSR."""
    now = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)
    store.execute(lambda view, ids: request_stop(view, ids, ADMIN, RequestStop(
        account_id="A-F1", stop_date=STOP + dt.timedelta(days=30), sa_ids=("SA-F1",)),
        TODAY, now))
    store.execute(lambda view, ids: cancel_pending_stop(view, ids, ADMIN, CancelPendingStop(
        sa_id="SA-F1"), TODAY, now))


def _everything(store: SqlCcbStore) -> dict[str, Any]:
    """SAACT's comparable database, and the counters behind generated ids (a unit hands out
    the ids of drawing one at a time, however it draws them)."""
    found = _database(store)
    with store.engine.connect() as connection:
        found["tables"]["ccb_id_sequences"] = sorted(
            map(repr, connection.execute(select(id_sequences))))
    return found


def _first_difference(left: Mapping[str, Any], right: Mapping[str, Any]) -> str:
    """The first differing rows of each differing table, both sides (for the failure)."""
    lines = []
    for name in _differences(left["tables"], right["tables"]):
        mine, theirs = left["tables"][name], right["tables"][name]
        for index, (one, other) in enumerate(zip(mine, theirs, strict=False)):
            if one != other:
                lines.append(f"{name}[{index}]\n  set-based: {one}\n  general:   {other}")
                break
        else:
            lines.append(f"{name}: {len(mine)} rows set-based, {len(theirs)} general")
    for name in ("requests", "entities"):
        for index, (one, other) in enumerate(zip(left[name], right[name], strict=False)):
            if one != other:
                lines.append(f"{name}[{index}]\n  set-based: {one}\n  general:   {other}")
                break
        else:
            if len(left[name]) != len(right[name]):
                lines.append(f"{name}: {len(left[name])} set-based, {len(right[name])} general")
    return "\n".join(lines)


@pytest.mark.parametrize("chunk_size", [500, 4])
def test_step_1_1_set_based_stop_upload_leaves_the_database_the_general_rules_leave(
        database_url: str, postgres_or_sqlite_second_url: str, chunk_size: int) -> None:
    calls: list[tuple[list[str], list[str]]] = []
    fast = _uploads(database_url, _Counting, chunk_size, calls)
    general = _uploads(postgres_or_sqlite_second_url, _GeneralOnly, chunk_size, [])
    first_calls, second_calls, again_calls = fast["calls"]
    assert first_calls == _expected_calls(first_calls, FIRST_ALWAYS, FIRST_ALONE)
    assert {key for _, picked in first_calls for key in picked} == FIRST_ALWAYS | FIRST_ALONE
    assert second_calls == _expected_calls(second_calls, SECOND_ALWAYS, frozenset())
    assert {key for _, picked in second_calls for key in picked} == SECOND_ALWAYS
    assert again_calls == _expected_calls(again_calls, frozenset(), frozenset())
    for name in ("first", "second", "again"):
        assert fast[name] == general[name], name
    for name in ("after_first", "after_all"):
        assert not _differences(fast[name], general[name]), (
            f"{name}:\n{_first_difference(fast[name], general[name])}")
    assert fast["spots"] == general["spots"]
    # What the rows did, in the business's terms.
    first = fast["first"]
    assert first["changed"] == 17
    assert [row for row, _ in first["errors"]] == ["8", "11", "12", "14", "15", "22", "23",
                                                   "25"]
    reasons = dict(first["errors"])
    assert "pending stop" in reasons["8"]
    assert "belongs to account 'A-OB'" in reasons["11"]
    assert "cancel the pending start instead" in reasons["12"]
    assert "is before the start date" in reasons["14"]
    assert "back-dated more than 60 days" in reasons["15"]
    assert "pigeon" in reasons["22"]
    assert "A-NOPE" in reasons["23"]
    assert "SA 'SA-HX' and SA 'SA-HXOLD' would both serve it on 2024-06-01" in reasons["25"]
    assert fast["second"]["changed"] == 5
    assert fast["second"]["errors"] == []
    assert fast["again"]["changed"] == 0
    assert len(fast["again"]["errors"]) == len(_first_upload())
    spots = fast["spots"]
    # SA-F1's request queued before the upload, refreshed with the pending stop's snapshot.
    assert fast["f1_requests"] == [(SyncRequestState.PENDING, "30")]
    assert spots["statuses"]["SA-F0"] == (SaStatus.PENDING_STOP, STOP)
    assert spots["statuses"]["SA-F2"] == (SaStatus.PENDING_STOP, STOP)
    assert spots["statuses"]["SA-F5"] == (SaStatus.PENDING_STOP, TOMORROW)
    assert spots["statuses"]["SA-TD"] == (SaStatus.STOPPED, TODAY)
    assert spots["statuses"]["SA-SUB"] == (SaStatus.PENDING_STOP, STOP)
    assert spots["statuses"]["SA-NT"] == (SaStatus.PENDING_START, None)
    assert spots["links"]["SA-F0"] == [("SP-F0", STOP)]
    assert sorted(spots["links"]["SA-F2"]) == [("SP-F2", STOP), ("SP-F2B", STOP)]
    assert spots["links"]["SA-F3"] == [("SP-F3", STOP)]
    assert spots["contacts"]["F0"] == [("STOPSVC", "phone", "A-F0", "PR-F0")]
    assert spots["contacts"]["F4"] == [("STOPSVC", "email", "A-F4", "PR-F4")]
    assert spots["contacts"]["PG"] == []
    assert spots["stop_fas"] == [("stop", "E-OFF")]
    assert spots["landlord_sas"] == [(SaStatus.PENDING_START, STOP, "SA-LL")]
    assert spots["account_td_final_bill"] is True
