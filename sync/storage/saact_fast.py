"""``SAACT``'s set-based path over SQL: the facts of a chunk read with a few queries, the
decisions (:mod:`sync.ccb.batches.saact_fast`) written with one statement per table, and the
moved SAs' sync snapshots built from the rows read.

Reads are plain rows (no models), two queries per chunk: the chunk's SAs joined with their
accounts, each row carrying the facts as correlated index lookups (sub SAs, field activities,
open To Dos, severance processes, financial transactions, the account's budgets, collection
processes and number of SAs, the premise's time zone), read ``FOR UPDATE`` of the SA and account
rows in id order like the general path's version check, so the versions read are the versions
replaced; then the links with their service points. Writes: one ``UPDATE ... WHERE id = :id AND
version = :read`` of the SAs (status, audit log, version) and one of the accounts whose final
bill is flagged (flag, version), each executed with every parameter set; a summed row count
short of the number of rows is a :class:`~sync.ccb.errors.ConcurrentUpdateError`. The account's
derived person rows are not rewritten: they do not change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)

from sync.ccb.batches.common import Shortcut
from sync.ccb.batches.saact_fast import SaFacts, apply_fast, fast_actions
from sync.ccb.batches.set_based import SetBasedChanges
from sync.ccb.changes import ACCOUNT, SA, Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.model import ToDoStatus
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig
from sync.mapping.snapshots import sa_snapshot_document
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import RawSelect, in_batches, probed_keys, update_many
from sync.storage.ccb_view import SqlCcbView

_SA = schema.service_agreements
_ACCOUNT = schema.accounts
# Only what the facts and the snapshot need: the other JSON documents are not decoded.
_SA_COLUMNS = ("id", "account_id", "sa_type", "status", "start_date", "end_date", "premise_id",
               "master_sa_id", "version")
_ACCOUNT_COLUMNS = ("id", "main_person_id", "customer_class", "bill_cycle", "division",
                    "final_bill_pending", "version")


@dataclass(frozen=True)
class SnapshotRows:
    """What the store keeps of an SA's rows for its writes: what its snapshot is built from,
    and its audit log as read."""

    sa: Mapping[str, Any]
    account: Mapping[str, Any]
    links: tuple[Mapping[str, Any], ...]
    service_points: Mapping[str, Mapping[str, Any]]
    premise_time_zone: str | None
    audit: StoredAudit


class SqlSaactFastPath:
    """The set-based path of one ``SAACT`` run (its admin data and business date)."""

    def __init__(self, admin: AdminConfig, today: dt.date) -> None:
        self.admin = admin
        self.today = today

    def shortcuts(self, view: CcbView, item_ids: Sequence[str]) -> dict[str, Shortcut]:
        """The chunk's items that take the set-based path, each with what records it."""
        if not isinstance(view, SqlCcbView) or not item_ids:
            return {}
        facts = read_facts(view.connection, item_ids)
        return {sa_id: partial(apply_fast, action=action, facts=fact)
                for sa_id, (action, fact) in fast_actions(facts, self.admin,
                                                          self.today).items()}

    def write(self, view: CcbView, changes: Changes) -> None:
        if isinstance(view, SqlCcbView) and isinstance(changes, SetBasedChanges):
            write_set_based(view.connection, changes)


def exists_probe(select_: Any, probes: bool) -> Any:
    # ``OFFSET 0`` keeps PostgreSQL from turning the EXISTS into a hashed subplan, which reads
    # the whole table once per chunk when the planner thinks that cheaper than probing its
    # index once per SA (it does up to a few hundred thousand rows, with the default costs).
    return (select_.offset(literal_column("0")) if probes else select_).exists()


# The facts of a chunk's SAs, as labelled SQL expressions over the SA's and the account's
# columns; the flag says whether each lookup must be written as a probe (PostgreSQL).
FactColumns = Callable[[Any, Any, bool], tuple[Any, ...]]


def _saact_facts(sa: Any, account: Any, probes: bool) -> tuple[Any, ...]:
    """SAACT's facts: correlated index lookups (``EXISTS``, one count of the account's
    SAs)."""
    others = _SA.alias("others")
    todo = schema.todos.c
    one: Any = literal_column("1")
    forwarding = sa.forwarding_address
    return (
        and_(forwarding.is_not(None), cast(forwarding, String) != "null")
        .label("has_forwarding_address"),
        exists_probe(select(others.c.id).where(others.c.master_sa_id == sa.id), probes)
        .label("has_sub_sas"),
        exists_probe(select(one).where(schema.field_activities.c.sa_id == sa.id), probes)
        .label("has_field_activities"),
        exists_probe(select(one).where(todo.drill_kind == "sa", todo.drill_id == sa.id,
                                  todo.status != ToDoStatus.COMPLETE.value), probes)
        .label("has_open_todo"),
        exists_probe(select(one).where(schema.severance_processes.c.sa_id == sa.id), probes)
        .label("has_severance_processes"),
        exists_probe(select(one).where(schema.financial_transactions.c.sa_id == sa.id), probes)
        .label("has_financial_transactions"),
        exists_probe(select(one).where(schema.budgets.c.account_id == sa.account_id), probes)
        .label("account_has_budgets"),
        exists_probe(select(one).where(schema.collection_processes.c.account_id == sa.account_id),
                probes).label("account_has_collection_processes"),
        select(func.count()).select_from(others).where(others.c.account_id == sa.account_id)
        .scalar_subquery().label("account_sa_count"),
        select(schema.premises.c.time_zone).where(schema.premises.c.id == sa.premise_id)
        .scalar_subquery().label("premise_time_zone"),
    )


def chunk_query(sqlite: bool, fact_columns: FactColumns) -> Any:
    """The chunk's SAs with their accounts and the facts ``fact_columns`` gives, one row per
    SA. On SQLite the audit log comes as its stored JSON text, to be appended to without
    decoding it.

    On PostgreSQL every lookup is written so that it can only be an index probe per SA: the
    SA and its account as lateral subqueries with ``LIMIT 1`` over the sorted ids, the
    ``EXISTS`` with ``OFFSET 0``. As a plain join with ``IN`` the planner chose, with its
    default costs, a hash join reading the whole accounts table and hashed subplans reading
    the whole SA table for every chunk, so the cost of a chunk grew with the tables (22 ms per
    chunk of 500 at 100,000 SAs against 10 ms at 10,000)."""
    probes = not sqlite
    if probes:
        wanted = probed_keys(("ids", "id"))
        sa_row = (select(_SA).where(_SA.c.id == wanted.c.id).limit(literal_column("1"))
                  .with_for_update().lateral("sa"))
        account_row = (select(_ACCOUNT).where(_ACCOUNT.c.id == sa_row.c.account_id)
                       .limit(literal_column("1")).with_for_update().lateral("account"))
        sa, account = sa_row.c, account_row.c
    else:
        sa, account = _SA.c, _ACCOUNT.c
    facts = fact_columns(sa, account, probes)
    audit = type_coerce(sa.audit, Text).label("audit") if sqlite else sa.audit
    account_columns = [account[name].label(f"acct_{name}") for name in _ACCOUNT_COLUMNS]
    columns = (*(sa[name] for name in _SA_COLUMNS), audit, *account_columns, *facts)
    if probes:
        # Nested loops keep the order of the sorted ids, so rows are locked in id order.
        return (select(*columns).select_from(wanted)
                .join(sa_row, true()).join(account_row, true()))
    return (select(*columns)
            .join_from(_SA, _ACCOUNT, account.id == sa.account_id)
            .where(sa.id.in_(bindparam("ids", expanding=True)))
            .order_by(sa.id).with_for_update(of=[_SA, _ACCOUNT]))


_FACTS = {sqlite: chunk_query(sqlite, _saact_facts) for sqlite in (False, True)}
_POINT = schema.service_points.c
_POINT_COLUMNS = ("id", "sp_type", "premise_id", "time_zone", "meter_id",
                  "measuring_components", "version")


def _links_query(sqlite: bool) -> Any:
    """The chunk's links with their service points (on SQLite the measuring components as
    stored text: decoded once per distinct text). On PostgreSQL each service point is a
    lateral probe of its key, for the reason given in :func:`chunk_query` (the planner read
    the whole service point table for every chunk)."""
    links = schema.sa_sp_links
    if sqlite:
        point_columns = [
            (type_coerce(_POINT[name], Text) if name == "measuring_components"
             else _POINT[name]).label(f"point_{name}") for name in _POINT_COLUMNS]
        return (select(*links.c, *point_columns)
                .join_from(links, schema.service_points,
                           _POINT.id == links.c.sp_id, isouter=True)
                .where(links.c.sa_id.in_(bindparam("ids", expanding=True))))
    wanted = probed_keys(("ids", "id"))
    link_row = (select(links).where(links.c.sa_id == wanted.c.id)
                .offset(literal_column("0")).lateral("link"))
    point_row = (select(schema.service_points).where(_POINT.id == link_row.c.sp_id)
                 .limit(literal_column("1")).lateral("point"))
    return (select(*link_row.c, *(point_row.c[name].label(f"point_{name}")
                                  for name in _POINT_COLUMNS))
            .select_from(wanted).join(link_row, true())
            .join(point_row, true(), isouter=True))


_LINKS = {sqlite: _links_query(sqlite) for sqlite in (False, True)}
_LINK_COLUMNS = tuple(column.name for column in schema.sa_sp_links.c)
_FACTS_READ = {sqlite: RawSelect(query, "ids", array=not sqlite)
               for sqlite, query in _FACTS.items()}
_LINKS_READ = {sqlite: RawSelect(query, "ids", array=not sqlite)
               for sqlite, query in _LINKS.items()}
# The date columns the rows are read with, by name: on SQLite the driver gives their ISO text.
_FACT_DATES = ("start_date", "end_date")
_LINK_DATES = ("start_date", "stop_date")


@lru_cache(maxsize=256)
def _decoded(text: str) -> Any:
    return json.loads(text)


def dict_rows(connection: Connection, read: RawSelect, ids: Sequence[str],
           dates: Sequence[str]) -> list[dict[str, Any]]:
    """The rows as dictionaries by column name, with dates as dates on every database."""
    rows = [dict(zip(read.columns, row, strict=True)) for row in read.rows(connection, ids)]
    if connection.dialect.name == "sqlite":
        for row in rows:
            for name in dates:
                if isinstance(row[name], str):
                    row[name] = dt.date.fromisoformat(row[name])
    return rows


@dataclass(frozen=True)
class StoredAudit:
    """The SA's audit log as read: its JSON text as stored (SQLite, appended to as text) or
    the decoded document."""

    text: str | None
    document: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ChunkRows:
    """A chunk's SA rows (with their account's columns and the facts) by SA id, their links
    by SA id, and the service points of those links by id."""

    sas: dict[str, dict[str, Any]]
    links: dict[str, list[dict[str, Any]]]
    points: dict[str, dict[str, Any]]

    def snapshot_rows(self, row: Mapping[str, Any], raw: bool) -> SnapshotRows:
        """What the SA's snapshot and its writes need of the rows read."""
        own_links = tuple(self.links.get(row["id"], ()))
        account = {name: row[f"acct_{name}"] for name in _ACCOUNT_COLUMNS}
        audit = StoredAudit(row["audit"]) if raw else StoredAudit(None, tuple(row["audit"]))
        return SnapshotRows(
            row, account, own_links,
            {link["sp_id"]: self.points[link["sp_id"]] for link in own_links
             if link["sp_id"] in self.points},
            row["premise_time_zone"] if row["premise_id"] is not None else None, audit)


def read_chunk(connection: Connection, reads: Mapping[bool, RawSelect],
               ids: Sequence[str]) -> ChunkRows:
    """The rows of the SAs ``ids`` (those that exist, with their account) through the chunk
    query of ``reads`` (by whether the database is SQLite), with their links and service
    points."""
    raw = connection.dialect.name == "sqlite"
    chunk = ChunkRows({}, {}, {})
    for part in in_batches(list(dict.fromkeys(ids))):
        chunk.sas.update((row["id"], row)
                         for row in dict_rows(connection, reads[raw], part, _FACT_DATES))
        for joined in dict_rows(connection, _LINKS_READ[raw], part, _LINK_DATES):
            link = {name: joined[name] for name in _LINK_COLUMNS}
            chunk.links.setdefault(link["sa_id"], []).append(link)
            if joined["point_id"] is not None and link["sp_id"] not in chunk.points:
                point = {name: joined[f"point_{name}"] for name in _POINT_COLUMNS}
                if raw and point["measuring_components"] is not None:
                    point["measuring_components"] = _decoded(point["measuring_components"])
                chunk.points[link["sp_id"]] = point
    return chunk


def read_facts(connection: Connection, item_ids: Sequence[str]) -> list[SaFacts]:
    """The facts of the chunk's SAs (those that exist, with their account), in item order."""
    raw = connection.dialect.name == "sqlite"
    chunk = read_chunk(connection, _FACTS_READ, item_ids)
    found = []
    for sa_id in dict.fromkeys(item_ids):
        row = chunk.sas.get(sa_id)
        if row is None:
            continue
        stored = chunk.snapshot_rows(row, raw)
        account = stored.account
        found.append(SaFacts(
            sa_id=sa_id, account_id=row["account_id"], sa_type=row["sa_type"],
            status=row["status"], start_date=row["start_date"], end_date=row["end_date"],
            master_sa_id=row["master_sa_id"],
            has_forwarding_address=bool(row["has_forwarding_address"]),
            version=int(row["version"]), account_found=True,
            account_version=int(account["version"]),
            account_final_bill_pending=bool(account["final_bill_pending"]),
            account_bill_cycle=account["bill_cycle"],
            account_sa_count=int(row["account_sa_count"]),
            has_sub_sas=bool(row["has_sub_sas"]),
            has_field_activities=bool(row["has_field_activities"]),
            has_open_todo=bool(row["has_open_todo"]),
            has_severance_processes=bool(row["has_severance_processes"]),
            has_financial_transactions=bool(row["has_financial_transactions"]),
            account_has_budgets=bool(row["account_has_budgets"]),
            account_has_collection_processes=bool(row["account_has_collection_processes"]),
            stored=stored))
    return found


def appended_audit(audit: StoredAudit, entries: Sequence[Mapping[str, Any]]) -> Any:
    """The audit column's new value: the stored JSON text with the entries' JSON appended
    (exactly the text ``json.dumps`` gives for the whole log, as SQLAlchemy writes it), or the
    decoded log plus the entries."""
    text = audit.text
    if text is None:
        return [*audit.document, *entries]
    added = ", ".join(json.dumps(entry) for entry in entries)
    if text == "[]":
        return f"[{added}]"
    if text.startswith("[") and text.endswith("]"):
        return f"{text[:-1]}, {added}]"
    return json.dumps([*json.loads(text), *entries])  # stored in another form: re-encode


def write_set_based(connection: Connection, changes: SetBasedChanges) -> None:
    """The chunk's set-based row updates, one statement per table."""
    if changes.sa_updates:
        raw = connection.dialect.name == "sqlite"
        count = update_many(connection, _SA, ("status", "audit", "version"), ("id", "version"), [
            {"set:status": update.status.value,
             "set:audit": appended_audit(update.facts.stored.audit, update.entries),
             "set:version": update.version, "where:id": update.facts.sa_id,
             "where:version": update.version - 1} for update in changes.sa_updates],
            as_stored=("audit",) if raw else ())
        if count != len(changes.sa_updates):
            first = changes.sa_updates[0]
            raise ConcurrentUpdateError(first.facts.sa_id, schema.SAS.kind,
                                        version_read=first.version - 1)
    if changes.final_bill_flags:
        count = update_many(connection, _ACCOUNT, ("final_bill_pending", "version"),
                            ("id", "version"), [
            {"set:final_bill_pending": True, "set:version": flag.version,
             "where:id": flag.account_id, "where:version": flag.version - 1}
            for flag in changes.final_bill_flags])
        if count != len(changes.final_bill_flags):
            first_flag = changes.final_bill_flags[0]
            raise ConcurrentUpdateError(first_flag.account_id, schema.ACCOUNTS.kind,
                                        version_read=first_flag.version - 1)


def set_based_snapshots(written: Changes | None, admin: AdminConfig) -> tuple[
        dict[tuple[str, str], Mapping[str, Any]], dict[tuple[str, str], list[tuple[str, str]]]]:
    """For the sync outbox: the snapshot documents of the SAs a unit moved on set-based (an
    SA whose rows the document cannot be built from is left to the general snapshot), and the
    entities to snapshot for each of their ``changed`` entries (the SA; for its account, the
    account's one SA)."""
    if not isinstance(written, SetBasedChanges) or not written.sa_updates:
        return {}, {}
    documents: dict[tuple[str, str], Mapping[str, Any]] = {}
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    flagged = {flag.account_id for flag in written.final_bill_flags}
    for update_ in written.sa_updates:
        facts = update_.facts
        key = (SA, facts.sa_id)
        targets[key] = [key]
        if facts.account_id in flagged:
            targets[(ACCOUNT, facts.account_id)] = [key]
        rows = facts.stored
        if not isinstance(rows, SnapshotRows):
            continue
        document = sa_snapshot_document(
            admin, rows.sa, rows.account, rows.links, rows.service_points,
            rows.premise_time_zone, status=update_.status.value)
        if document is not None:
            documents[key] = document
    return documents, targets
