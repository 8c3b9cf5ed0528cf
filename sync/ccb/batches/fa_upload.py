"""``FACOMPL``: complete field activities from an upload file (step 1.6).

The field crews' system sends one row per visit: the FA id, when it was completed and the read
taken. A file is CSV (a header row naming the columns, any order, each once; every row with as
many fields as the header, or it is a bad row) or JSON (a list of objects, or an object whose
``rows`` key holds the list), with the columns ``fa_id``, ``completed_at`` (ISO 8601; without
an offset it is read in the installation's base time zone) and ``read_value``. Rows are
numbered from 1 in the order they appear (a CSV header is not a row).

:func:`parse_upload` checks the shape of each row; :func:`complete_row` applies a good row
through the same completion as ``ccb complete-fa``, which refuses an unknown or non-pending FA.
A bad row is reported with its number and reason and changes nothing; the other rows apply.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sync.ccb.batches.common import ItemOutcome, Result, resolve_todos
from sync.ccb.errors import InvalidCommand
from sync.ccb.fieldwork import complete_field_activity
from sync.ccb.model import DrillKey
from sync.ccb.work import Work

CODE = "FACOMPL"
COLUMNS = ("fa_id", "completed_at", "read_value")


@dataclass(frozen=True)
class FaCompletionRow:
    row: int
    fa_id: str
    completed_at: dt.datetime
    read_value: float


@dataclass(frozen=True)
class RowProblem:
    row: int
    reason: str


def detect_format(source: str, text: str) -> str:
    """``csv`` or ``json``: from the file name's suffix, else from the first character."""
    lowered = source.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith(".csv"):
        return "csv"
    return "json" if text.lstrip().startswith(("[", "{")) else "csv"


def parse_upload(text: str, source: str, base_time_zone: str,
                 file_format: str | None = None) -> tuple[list[FaCompletionRow],
                                                          list[RowProblem]]:
    """Good rows and bad rows of an upload; a file that is not a table at all is refused
    with :class:`InvalidCommand` naming the file."""
    kind = file_format or detect_format(source, text)
    records = json_records(text, source) if kind == "json" else csv_records(text, source)
    zone = ZoneInfo(base_time_zone)
    rows: list[FaCompletionRow] = []
    problems: list[RowProblem] = []
    for number, record in enumerate(records, start=1):
        parsed = record if isinstance(record, RowProblem) else _row(number, record, zone)
        if isinstance(parsed, RowProblem):
            problems.append(parsed)
        else:
            rows.append(parsed)
    return rows, problems


def csv_records(text: str, source: str, columns: tuple[str, ...] = COLUMNS
                ) -> list[Mapping[str, Any] | RowProblem]:
    """The rows of a CSV upload as mappings by column name, or as the problem of a row whose
    number of fields is not the header's; the header must name ``columns``, each once."""
    lines = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(lines, [])]
    named = [name for name in header if name]
    repeated = sorted({name for name in named if named.count(name) > 1})
    if repeated:
        # Which of the two values a row means would be a guess: refuse the file instead.
        raise InvalidCommand("upload file", source, "header",
                             f"column(s) named more than once: {', '.join(repeated)}")
    missing = [column for column in columns if column not in header]
    if missing:
        raise InvalidCommand("upload file", source, "header",
                             f"missing column(s) {', '.join(missing)}"
                             f" (expected {', '.join(columns)})")
    records: list[Mapping[str, Any] | RowProblem] = []
    for fields in lines:
        if not fields:  # a blank line is no row, as in csv.DictReader
            continue
        number = len(records) + 1
        if len(fields) != len(header):
            # A field too many or too few means a stray or missing separator (an unquoted
            # "18,500", a cut line): the values may sit under the wrong columns, so the row
            # is reported rather than read in part.
            count = f"{len(fields)} field" + ("" if len(fields) == 1 else "s")
            records.append(RowProblem(number, f"{count} where the header has {len(header)}"))
            continue
        records.append({name: value for name, value in zip(header, fields, strict=True)
                        if name})
    return records


def json_records(text: str, source: str) -> list[Mapping[str, Any] | RowProblem]:
    """The rows of a JSON upload: a list of objects, or an object with a ``rows`` list."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidCommand("upload file", source, f"line {error.lineno}",
                             f"not valid JSON: {error.msg}") from None
    if isinstance(data, dict) and "rows" in data:
        data = data["rows"]
    if not isinstance(data, list):
        raise InvalidCommand("upload file", source, "rows",
                             "expected a list of rows (or an object with a 'rows' list)")
    return [item if isinstance(item, dict) else {"": item} for item in data]


def _row(number: int, record: Mapping[str, Any], zone: ZoneInfo
         ) -> FaCompletionRow | RowProblem:
    missing = [column for column in COLUMNS
               if record.get(column) is None or str(record.get(column)).strip() == ""]
    if missing:
        return RowProblem(number, f"missing {', '.join(missing)}")
    fa_id = str(record["fa_id"]).strip()
    raw_at = str(record["completed_at"]).strip()
    try:
        completed_at = dt.datetime.fromisoformat(raw_at)
    except ValueError:
        return RowProblem(number, f"FA {fa_id!r}: completed_at: {raw_at!r} is not a date and"
                                  " time (ISO 8601, e.g. 2025-03-03T09:30:00-06:00)")
    if completed_at.tzinfo is None:
        completed_at = completed_at.replace(tzinfo=zone)
    raw_read = record["read_value"]
    try:
        if isinstance(raw_read, bool):
            raise ValueError
        read_value = float(str(raw_read).strip())
    except ValueError:
        return RowProblem(number, f"FA {fa_id!r}: read_value: {raw_read!r} is not a number")
    if not math.isfinite(read_value):
        return RowProblem(number, f"FA {fa_id!r}: read_value: {raw_read!r} is not a number")
    return FaCompletionRow(number, fa_id, completed_at, read_value)


def complete_row(work: Work, row: FaCompletionRow) -> ItemOutcome:
    """Complete the row's FA; raises (naming the FA and field) when the row cannot apply."""
    completed_on = row.completed_at.astimezone(work.now.tzinfo).date() \
        if work.now.tzinfo is not None else row.completed_at.date()
    if completed_on > work.today:
        raise InvalidCommand("FA", row.fa_id, "completed_at",
                             f"{row.completed_at.isoformat()} is after the business date"
                             f" {work.today.isoformat()}")
    complete_field_activity(work, row.fa_id, row.read_value, row.completed_at)
    resolve_todos(work, DrillKey(kind="fa", id=row.fa_id), ("fa_near_read",),
                  f"completed from an upload by {CODE}")
    return ItemOutcome("row", str(row.row), Result.CHANGED,
                       f"FA {row.fa_id} complete with read {row.read_value}")
