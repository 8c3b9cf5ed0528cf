"""``STOPUPL``: request stops from an upload file (steps 1.1-1.9, many at once).

A mass move-out (a building emptied for renovation, a base closing, a portfolio sold) arrives as
a list: one row per stop request, with the columns ``account_id`` and ``stop_date`` (ISO date),
and optionally ``sa_ids`` (several separated by spaces, commas or semicolons; a list in JSON),
``premise_id`` and ``contact_method``. A row must name SAs or a premise, as the single request
does. The file is CSV (a header row, any column order) or JSON (a list of objects, or an object
whose ``rows`` key holds the list); rows are numbered from 1 in file order.

:func:`parse_stop_rows` checks the shape of each row; :func:`request_stop_row` applies a good
row through the very rules of ``ccb request-stop`` (same To Dos, field activities, reversion,
customer contact), each row seeing the rows before it in its unit of work. A bad row is reported
with its number and reason and changes nothing; the other rows apply.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sync.ccb.batches.common import ItemOutcome, Result
from sync.ccb.batches.fa_upload import RowProblem, csv_records, detect_format, json_records
from sync.ccb.commands import RequestStop
from sync.ccb.coverage import check_no_overlap
from sync.ccb.stop_start import request_stop_in
from sync.ccb.work import Work

CODE = "STOPUPL"
COLUMNS = ("account_id", "stop_date")
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class StopRequestRow:
    row: int
    account_id: str
    stop_date: dt.date
    sa_ids: tuple[str, ...] = ()
    premise_id: str | None = None
    contact_method: str | None = None


def parse_stop_rows(text: str, source: str, file_format: str | None = None
                    ) -> tuple[list[StopRequestRow], list[RowProblem]]:
    """Good rows and bad rows of a stop upload; a file that is not a table at all is refused
    with :class:`~sync.ccb.errors.InvalidCommand` naming the file."""
    kind = file_format or detect_format(source, text)
    records = json_records(text, source) if kind == "json" \
        else csv_records(text, source, COLUMNS)
    rows: list[StopRequestRow] = []
    problems: list[RowProblem] = []
    for number, record in enumerate(records, start=1):
        parsed = record if isinstance(record, RowProblem) else _row(number, record)
        if isinstance(parsed, RowProblem):
            problems.append(parsed)
        else:
            rows.append(parsed)
    return rows, problems


def _text(record: Mapping[str, Any], column: str) -> str:
    value = record.get(column)
    return "" if value is None else str(value).strip()


def _row(number: int, record: Mapping[str, Any]) -> StopRequestRow | RowProblem:
    missing = [column for column in COLUMNS if not _text(record, column)]
    if missing:
        return RowProblem(number, f"missing {', '.join(missing)}")
    account_id = _text(record, "account_id")
    raw_date = _text(record, "stop_date")
    try:
        stop_date = dt.date.fromisoformat(raw_date)
    except ValueError:
        return RowProblem(number, f"account {account_id!r}: stop_date: {raw_date!r} is not a"
                                  " date (ISO 8601, e.g. 2025-03-31)")
    raw_sas = record.get("sa_ids")
    if isinstance(raw_sas, list):
        if not all(isinstance(item, str) for item in raw_sas):
            return RowProblem(number, f"account {account_id!r}: sa_ids: {raw_sas!r} is not a"
                                      " list of SA ids")
        sa_ids = tuple(item.strip() for item in raw_sas if item.strip())
    elif raw_sas is None or isinstance(raw_sas, str):
        sa_ids = tuple(part for part in _SEPARATORS.split(raw_sas or "") if part)
    else:
        return RowProblem(number, f"account {account_id!r}: sa_ids: {raw_sas!r} is not a list"
                                  " of SA ids")
    premise_id = _text(record, "premise_id") or None
    if not sa_ids and premise_id is None:
        return RowProblem(number, f"account {account_id!r}: name the SAs (sa_ids) or a"
                                  " premise (premise_id) to stop")
    return StopRequestRow(number, account_id, stop_date, sa_ids, premise_id,
                          _text(record, "contact_method") or None)


def stop_command(row: StopRequestRow, user: str) -> RequestStop:
    """The single stop request a row stands for."""
    command = RequestStop(account_id=row.account_id, stop_date=row.stop_date,
                          sa_ids=row.sa_ids, premise_id=row.premise_id, user=user)
    if row.contact_method is not None:
        command = replace(command, contact_method=row.contact_method)
    return command


def stop_requested(row: StopRequestRow, stopped: list[str]) -> ItemOutcome:
    """A good row's outcome: the stop requested for the row's account's SAs ``stopped``."""
    return ItemOutcome("row", str(row.row), Result.CHANGED,
                       f"stop on {row.stop_date.isoformat()} requested for SA "
                       + ", ".join(sorted(stopped)))


def request_stop_row(work: Work, row: StopRequestRow) -> ItemOutcome:
    """Request the row's stop; raises (naming the entity and field) when it cannot apply."""
    puts = work.changes.puts_of
    sas_before, links_before = len(puts("sas")), len(puts("links"))
    request_stop_in(work, stop_command(row, work.user))
    # The single request's last check, over what this row changed only: the unit holds the
    # earlier rows too, and checking all of them again for every row would be quadratic.
    changed_sas = set(puts("sas")[sas_before:])
    check_no_overlap(work, work.admin,
                     {work.changes.links[link_id].sp_id for link_id in puts("links")[links_before:]}
                     | {link.sp_id for sa_id in changed_sas for link in work.links_of_sa(sa_id)})
    # The row's account's SAs: a landlord's reversion start is another account's change.
    return stop_requested(row, [sa_id for sa_id in changed_sas
                                if work.changes.sas[sa_id].account_id == row.account_id])
