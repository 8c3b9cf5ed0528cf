"""Bulk set-up for the SAACT benchmark: pending SAs due today, ready to move on.

Rows are written with multi-row SQL inserts straight into the CCB tables (not through
commands: the set-up is not what is measured). Each due SA has its own person, account,
premise, water service point (no fieldwork, so it is ready) and SA/SP link; half are pending
starts dated today, half pending stops dated today. "Not due" SAs, used to grow the table
without growing the work, are pending starts and stops dated a year ahead on one shared
account and premise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, Table, insert

from sync.ccb.model import (
    Account,
    Address,
    Person,
    Premise,
    SaSpLink,
    SaStatus,
    ServiceAgreement,
    ServicePoint,
)
from sync.storage import ccb_schema as schema

BATCH = 20_000
SA_TYPE = "W-RES"
SP_TYPE = "W-RES"


def _template(kind: schema.EntityTable, entity: Any) -> dict[str, Any]:
    return kind.to_row(entity)


def due_rows(count: int, today: dt.date, start: int = 0) -> Iterator[tuple[Table, list[dict[str,
                                                                                         Any]]]]:
    since = today - dt.timedelta(days=400)
    address = Address(line1="1 Main St", city="Springfield", state="IL", postal_code="62701")
    person = _template(schema.PERSONS, Person(id="x", name="CUSTOMER,BENCH"))
    account = _template(schema.ACCOUNTS, Account(id="x", main_person_id="x"))
    premise = _template(schema.PREMISES, Premise(id="x", address=address))
    point = _template(schema.SERVICE_POINTS, ServicePoint(id="x", premise_id="x",
                                                          sp_type=SP_TYPE))
    sa = _template(schema.SAS, ServiceAgreement(id="x", account_id="x", sa_type=SA_TYPE,
                                                status=SaStatus.PENDING_START, start_date=today))
    link = _template(schema.LINKS, SaSpLink(id="x", sa_id="x", sp_id="x", start_date=today))
    for first in range(start, start + count, BATCH):
        numbers = range(first, min(first + BATCH, start + count))
        keys = [f"{n:07d}" for n in numbers]
        yield schema.persons, [{**person, "id": f"BP-{k}"} for k in keys]
        yield schema.accounts, [{**account, "id": f"BA-{k}", "main_person_id": f"BP-{k}"}
                                for k in keys]
        yield schema.account_persons, [{"account_id": f"BA-{k}", "person_id": f"BP-{k}",
                                        "is_main": True} for k in keys]
        yield schema.premises, [{**premise, "id": f"BPR-{k}"} for k in keys]
        yield schema.service_points, [{**point, "id": f"BSP-{k}", "premise_id": f"BPR-{k}"}
                                      for k in keys]
        sas, links = [], []
        for n, k in zip(numbers, keys, strict=True):
            stopping = n % 2 == 1
            started = since if stopping else today
            sas.append({**sa, "id": f"BSA-{k}", "account_id": f"BA-{k}", "premise_id": f"BPR-{k}",
                        "status": (SaStatus.PENDING_STOP if stopping
                                   else SaStatus.PENDING_START).value,
                        "start_date": started, "end_date": today if stopping else None})
            links.append({**link, "id": f"BL-{k}", "sa_id": f"BSA-{k}", "sp_id": f"BSP-{k}",
                          "start_date": started, "stop_date": today if stopping else None})
        yield schema.service_agreements, sas
        yield schema.sa_sp_links, links


def _not_due_rows(count: int, today: dt.date) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
    later = today + dt.timedelta(days=365)
    address = Address(line1="2 Main St", city="Springfield", state="IL", postal_code="62701")
    yield schema.persons, [_template(schema.PERSONS, Person(id="BP-SHARED", name="SHARED,BENCH"))]
    yield schema.accounts, [_template(schema.ACCOUNTS, Account(id="BA-SHARED",
                                                               main_person_id="BP-SHARED"))]
    yield schema.premises, [_template(schema.PREMISES, Premise(id="BPR-SHARED",
                                                               address=address))]
    sa = _template(schema.SAS, ServiceAgreement(
        id="x", account_id="BA-SHARED", sa_type=SA_TYPE, status=SaStatus.PENDING_START,
        start_date=later, premise_id="BPR-SHARED"))
    for first in range(0, count, BATCH):
        rows = []
        for n in range(first, min(first + BATCH, count)):
            stopping = n % 2 == 1
            rows.append({**sa, "id": f"BNSA-{n:07d}",
                         "status": (SaStatus.PENDING_STOP if stopping
                                    else SaStatus.PENDING_START).value,
                         "start_date": today if stopping else later,
                         "end_date": later if stopping else None})
        yield schema.service_agreements, rows


def populate(engine: Engine, due: int, not_due: int, today: dt.date) -> None:
    """``due`` ready pending SAs due ``today`` and ``not_due`` pending SAs dated later."""
    with engine.begin() as connection:
        for table, rows in due_rows(due, today):
            if rows:
                connection.execute(insert(table), rows)
        if not_due:
            for table, rows in _not_due_rows(not_due, today):
                if rows:
                    connection.execute(insert(table), rows)
