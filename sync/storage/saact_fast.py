"""``SAACT``'s set-based path over SQL: the facts of a chunk read with a few queries, the
decisions (:mod:`sync.ccb.batches.saact_fast`) written with one statement per table, and the
moved SAs' sync snapshots built from the rows read.

Reads are plain rows (no models): the chunk's SAs and their accounts (``FOR UPDATE``, in id
order, like the general path's version check, so the versions read are the versions replaced),
then one query per fact (the accounts' SA counts, sub SAs, field activities, open To Dos,
severance processes, financial transactions, budgets, collection processes) and the snapshot's
rows (links, service points, premises). Writes: one ``UPDATE ... WHERE id = :id AND version =
:read`` of the SAs (status, audit log, version) and one of the accounts whose final bill is
flagged (flag, version), each executed with every parameter set; a summed row count short of the
number of rows is a :class:`~sync.ccb.errors.ConcurrentUpdateError`. The account's derived
person rows are not rewritten: they do not change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select, update

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
from sync.storage.ccb_persist import in_batches
from sync.storage.ccb_view import SqlCcbView

_SA = schema.service_agreements
_ACCOUNT = schema.accounts
# Only what the facts and the snapshot need: the other JSON documents are not decoded.
_SA_COLUMNS = tuple(_SA.c[name] for name in (
    "id", "account_id", "sa_type", "status", "start_date", "end_date", "premise_id",
    "master_sa_id", "forwarding_address", "audit", "version"))
_ACCOUNT_COLUMNS = tuple(_ACCOUNT.c[name] for name in (
    "id", "main_person_id", "customer_class", "bill_cycle", "division", "final_bill_pending",
    "version"))
_ID = "where_id"
_READ = "where_version"


@dataclass(frozen=True)
class SnapshotRows:
    """The rows an SA's snapshot is built from (its own row is in :class:`SaFacts`)."""

    sa: Mapping[str, Any]
    account: Mapping[str, Any]
    links: tuple[Mapping[str, Any], ...]
    service_points: Mapping[str, Mapping[str, Any]]
    premise_time_zone: str | None


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


def _rows(connection: Connection, query: Any, column: Any,
          values: Sequence[Any]) -> list[Any]:
    """``query`` filtered on ``column IN values``, a slice of values at a time."""
    found: list[Any] = []
    for part in in_batches(list(dict.fromkeys(values))):
        found.extend(connection.execute(query.where(column.in_(part))).mappings().all())
    return found


def _present(connection: Connection, column: Any, values: Sequence[Any],
             *where: Any) -> set[Any]:
    query: Select[Any] = select(column).where(*where).distinct()
    return {row[column.name] for row in _rows(connection, query, column, values)}


def read_facts(connection: Connection, item_ids: Sequence[str]) -> list[SaFacts]:
    """The facts of the chunk's SAs (those that exist), in item order."""
    ids = list(dict.fromkeys(item_ids))
    sa_rows = {row["id"]: row for row in _rows(
        connection, select(*_SA_COLUMNS).order_by(_SA.c.id).with_for_update(), _SA.c.id, ids)}
    account_ids = sorted({row["account_id"] for row in sa_rows.values()})
    accounts = {row["id"]: row for row in _rows(
        connection, select(*_ACCOUNT_COLUMNS).order_by(_ACCOUNT.c.id).with_for_update(),
        _ACCOUNT.c.id, account_ids)}
    counts = {row["account_id"]: int(row["count"]) for row in _rows(
        connection, select(_SA.c.account_id, func.count().label("count"))
        .group_by(_SA.c.account_id), _SA.c.account_id, account_ids)}
    subs = _present(connection, _SA.c.master_sa_id, ids)
    fas = _present(connection, schema.field_activities.c.sa_id, ids)
    todo = schema.todos.c
    todos = _present(connection, todo.drill_id, ids, todo.drill_kind == "sa",
                     todo.status != ToDoStatus.COMPLETE.value)
    severances = _present(connection, schema.severance_processes.c.sa_id, ids)
    fts = _present(connection, schema.financial_transactions.c.sa_id, ids)
    budgets = _present(connection, schema.budgets.c.account_id, account_ids)
    collections = _present(connection, schema.collection_processes.c.account_id, account_ids)
    links: dict[str, list[Mapping[str, Any]]] = {}
    for link in _rows(connection, select(schema.sa_sp_links), schema.sa_sp_links.c.sa_id, ids):
        links.setdefault(link["sa_id"], []).append(link)
    points = {row["id"]: row for row in _rows(
        connection, select(schema.service_points), schema.service_points.c.id,
        [link["sp_id"] for group in links.values() for link in group])}
    premise = schema.premises.c
    zones = {row["id"]: row["time_zone"] for row in _rows(
        connection, select(premise.id, premise.time_zone), premise.id,
        [row["premise_id"] for row in sa_rows.values() if row["premise_id"] is not None])}
    found = []
    for sa_id in ids:
        sa = sa_rows.get(sa_id)
        if sa is None:
            continue
        account = accounts.get(sa["account_id"])
        own_links = tuple(links.get(sa_id, ()))
        found.append(SaFacts(
            sa_id=sa_id, account_id=sa["account_id"], sa_type=sa["sa_type"],
            status=sa["status"], start_date=sa["start_date"], end_date=sa["end_date"],
            master_sa_id=sa["master_sa_id"],
            has_forwarding_address=sa["forwarding_address"] is not None,
            version=int(sa["version"]), audit=tuple(sa["audit"]),
            account_found=account is not None,
            account_version=int(account["version"]) if account is not None else 0,
            account_final_bill_pending=bool(account["final_bill_pending"])
            if account is not None else False,
            account_bill_cycle=account["bill_cycle"] if account is not None else "",
            account_sa_count=counts.get(sa["account_id"], 0),
            has_sub_sas=sa_id in subs, has_field_activities=sa_id in fas,
            has_open_todo=sa_id in todos, has_severance_processes=sa_id in severances,
            has_financial_transactions=sa_id in fts,
            account_has_budgets=sa["account_id"] in budgets,
            account_has_collection_processes=sa["account_id"] in collections,
            snapshot=SnapshotRows(
                sa, account or {}, own_links,
                {link["sp_id"]: points[link["sp_id"]] for link in own_links
                 if link["sp_id"] in points},
                zones.get(sa["premise_id"]) if sa["premise_id"] is not None else None)))
    return found


_SA_UPDATE = (update(_SA).where(_SA.c.id == bindparam(_ID), _SA.c.version == bindparam(_READ))
              .values(status=bindparam("new_status"),
                      audit=bindparam("new_audit", type_=_SA.c.audit.type),
                      version=bindparam("new_version")))
_FLAG_UPDATE = (update(_ACCOUNT)
                .where(_ACCOUNT.c.id == bindparam(_ID), _ACCOUNT.c.version == bindparam(_READ))
                .values(final_bill_pending=True, version=bindparam("new_version")))


def write_set_based(connection: Connection, changes: SetBasedChanges) -> None:
    """The chunk's set-based row updates, one statement per table."""
    if changes.sa_updates:
        result = connection.execute(_SA_UPDATE, [
            {_ID: update.facts.sa_id, _READ: update.version - 1, "new_status": update.status.value,
             "new_audit": list(update.audit), "new_version": update.version}
            for update in changes.sa_updates])
        if result.rowcount != len(changes.sa_updates):
            first = changes.sa_updates[0]
            raise ConcurrentUpdateError(first.facts.sa_id, schema.SAS.kind,
                                        version_read=first.version - 1)
    if changes.final_bill_flags:
        result = connection.execute(_FLAG_UPDATE, [
            {_ID: flag.account_id, _READ: flag.version - 1, "new_version": flag.version}
            for flag in changes.final_bill_flags])
        if result.rowcount != len(changes.final_bill_flags):
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
        rows = facts.snapshot
        if not isinstance(rows, SnapshotRows):
            continue
        document = sa_snapshot_document(
            admin, {**rows.sa, "status": update_.status.value}, rows.account, rows.links,
            rows.service_points, rows.premise_time_zone)
        if document is not None:
            documents[key] = document
    return documents, targets
