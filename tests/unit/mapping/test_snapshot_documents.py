"""SA snapshots built from rows (the set-based SAACT path) are the wire models' snapshots byte
for byte: the same payload as ``encode(sa_snapshot(...))`` and the same fingerprint as
``snapshot_fingerprint``, for any SA, account, links, service points and premise; rows the
wire models would refuse give no document (the models then report them)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.ccb.model import (
    Account,
    Address,
    MeasuringComponent,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
    UsageFlag,
)
from sync.config.admin import load_admin_config
from sync.mapping.codec import encode
from sync.mapping.messages import MAX_VERSION, snapshot_fingerprint
from sync.mapping.snapshots import (
    Delivery,
    document_fingerprint,
    document_json,
    encode_document,
    sa_snapshot,
    sa_snapshot_document,
)
from sync.storage import ccb_schema as schema
from tests.unit.mapping.strategies import dates, ids

ADMIN = load_admin_config()
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
zones = st.none() | st.sampled_from(["", "America/Chicago", "Europe/Zürich"])
floats = st.floats(allow_nan=False, allow_infinity=False)


class _View:
    """Just the reads :func:`sa_snapshot` makes."""

    def __init__(self, sa: ServiceAgreement, account: Account, links: list[SaSpLink],
                 points: dict[str, ServicePoint], premise: Premise | None) -> None:
        self._sa, self._account, self._links = sa, account, links
        self._points, self._premise = points, premise

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        return self._sa if sa_id == self._sa.id else None

    def account(self, account_id: str) -> Account | None:
        return self._account if account_id == self._account.id else None

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        return list(self._links)

    def service_point(self, sp_id: str) -> ServicePoint | None:
        return self._points.get(sp_id)

    def premise(self, premise_id: str) -> Premise | None:
        return self._premise if self._premise and premise_id == self._premise.id else None


@st.composite
def states(draw: st.DrawFn) -> tuple[ServiceAgreement, Account, list[SaSpLink],
                                     dict[str, ServicePoint], Premise | None]:
    premise = draw(st.none() | st.builds(
        Premise, id=ids, time_zone=zones,
        address=st.just(Address(line1="1 Main St", city="X", state="IL", postal_code="1"))))
    sp_ids = draw(st.lists(ids, max_size=3, unique=True))
    points = {sp_id: ServicePoint(
        id=sp_id, premise_id=draw(ids), sp_type=draw(texts), time_zone=draw(zones),
        meter_id=draw(st.none() | texts), version=draw(st.integers(1, MAX_VERSION)),
        measuring_components=tuple(MeasuringComponent(id=mc, mc_class=draw(texts),
                                                      channel=draw(texts))
                                   for mc in draw(st.lists(ids, max_size=2))))
        for sp_id in sp_ids}
    linked = draw(st.lists(st.sampled_from(sp_ids), max_size=4)) if sp_ids else []
    links = [SaSpLink(id=f"L-{n}-{draw(ids)}", sa_id="x", sp_id=sp_id, start_date=draw(dates),
                      stop_date=draw(st.none() | dates), start_read=draw(st.none() | floats),
                      stop_read=draw(st.none() | floats),
                      usage_flag=draw(st.sampled_from(list(UsageFlag))),
                      use_percent=draw(st.floats(0, 100)))
             for n, sp_id in enumerate(linked)]
    account = Account(id=draw(ids), main_person_id=draw(ids), customer_class=draw(texts),
                      bill_cycle=draw(texts), division=draw(texts))
    sa = ServiceAgreement(
        id=draw(ids), account_id=account.id, sa_type=draw(st.sampled_from(sorted(ADMIN.sa_types))),
        status=draw(st.sampled_from(list(SaStatus))), start_date=draw(dates),
        end_date=draw(st.none() | dates), master_sa_id=draw(st.none() | ids),
        premise_id=premise.id if premise is not None else draw(st.none() | ids))
    return sa, account, links, points, premise


def _document(sa: ServiceAgreement, account: Account, links: list[SaSpLink],
              points: dict[str, ServicePoint], premise: Premise | None) -> Any:
    """The document from the rows the store holds for these entities."""
    return sa_snapshot_document(
        ADMIN, schema.SAS.to_row(sa), schema.ACCOUNTS.to_row(account),
        [schema.LINKS.to_row(link) for link in links],
        {sp_id: schema.SERVICE_POINTS.to_row(sp) for sp_id, sp in points.items()},
        premise.time_zone if premise is not None and premise.id == sa.premise_id else None)


@settings(max_examples=300, deadline=None)
@given(states(), st.integers(1, MAX_VERSION), ids,
       st.datetimes(timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-6))])))
def test_document_payload_and_fingerprint_equal_the_wire_models(
        state: tuple[Any, ...], version: int, request_id: str, at: dt.datetime) -> None:
    delivery = Delivery(version, request_id, at)
    message = sa_snapshot(_View(*state), ADMIN, state[0].id, delivery)  # type: ignore[arg-type]
    document = _document(*state)
    assert document is not None
    assert encode_document(document, delivery) == encode(message)
    assert document_fingerprint(document) == snapshot_fingerprint(message)
    # As the outbox makes them: one encoding of the document for both.
    encoded = document_json(document)
    assert encode_document(document, delivery, encoded) == encode(message)
    assert document_fingerprint(document, encoded) == snapshot_fingerprint(message)


def test_a_payload_is_not_spliced_into_another_documents_json() -> None:
    sa = ServiceAgreement(id="SA-1", account_id="A-1", sa_type="W-RES",
                          status=SaStatus.ACTIVE, start_date=dt.date(2025, 3, 3))
    other = sa.model_copy(update={"id": "SA-2"})
    account = Account(id="A-1", main_person_id="P-1")
    document, other_document = (_document(one, account, [], {}, None) for one in (sa, other))
    assert document is not None
    assert other_document is not None
    with pytest.raises(ValueError, match="encoded is not the document's JSON"):
        encode_document(document, Delivery(1, "SR-1", dt.datetime(2025, 3, 3, tzinfo=dt.UTC)),
                        document_json(other_document))


def test_rows_the_wire_models_refuse_give_no_document() -> None:
    sa = ServiceAgreement(id="SA-1", account_id="A-1", sa_type="W-RES",
                          status=SaStatus.ACTIVE, start_date=dt.date(2025, 3, 3))
    account = Account(id="A-1", main_person_id="P-1")
    point = ServicePoint(id="SP-1", premise_id="PR-1", sp_type="W-RES")
    link = SaSpLink(id="L-1", sa_id="SA-1", sp_id="SP-1", start_date=dt.date(2025, 3, 3))
    good = _document(sa, account, [link], {"SP-1": point}, None)
    assert good is not None
    bad_percent = {**schema.LINKS.to_row(link), "use_percent": 150.0}
    unknown_type = {**schema.SAS.to_row(sa), "sa_type": "BOGUS"}
    rows = (schema.SAS.to_row(sa), schema.ACCOUNTS.to_row(account))
    assert sa_snapshot_document(ADMIN, *rows, [bad_percent],
                                {"SP-1": schema.SERVICE_POINTS.to_row(point)}, None) is None
    assert sa_snapshot_document(ADMIN, unknown_type, rows[1], [], {}, None) is None
    # A link to a service point that is not there: the general snapshot reports it.
    assert sa_snapshot_document(ADMIN, *rows, [schema.LINKS.to_row(link)], {}, None) is None
