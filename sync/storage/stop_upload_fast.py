"""``STOPUPL``'s set-based path over SQL: the facts of a chunk's SAs read with two queries, the
decisions (:mod:`sync.ccb.batches.stop_upload_fast`) written with one statement per table, and
the SAs' sync snapshots built from the rows read.

The reads are SAACT's (:func:`~sync.storage.saact_fast.chunk_query`, the same locks, the same
probes on PostgreSQL) with a stop request's facts: sub SAs, another live SA at the premise, the
premise's landlord agreement and parent, the main person; then the other SAs' links at the
chunk's SAs' service points with their SA's status and type (earlier tenants, mostly), for
the overlap check. Writes: one ``UPDATE ... WHERE id = :id AND version = :read`` of the SAs (status,
end date, who stopped them, audit log, version), a summed row count short of the rows being a
:class:`~sync.ccb.errors.ConcurrentUpdateError`, and one of the links' stop dates. The
contacts are ordinary new entities of the unit of work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection, and_, bindparam, literal_column, or_, select, true

from sync.ccb.batches.common import Shortcut
from sync.ccb.batches.set_based import SetBasedChanges
from sync.ccb.batches.stop_upload import StopRequestRow
from sync.ccb.batches.stop_upload_fast import (
    LinkPeriod,
    StopFacts,
    apply_fast_stop,
    fast_stops,
)
from sync.ccb.changes import SA, Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.model import IN_SERVICE, SaStatus
from sync.ccb.ports import CcbView
from sync.config.admin import AdminConfig
from sync.mapping.snapshots import sa_snapshot_document
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import RawSelect, in_batches, probed_keys, update_many
from sync.storage.ccb_view import SqlCcbView
from sync.storage.saact_fast import (
    SnapshotRows,
    appended_audit,
    chunk_query,
    dict_rows,
    exists_probe,
    read_chunk,
)

_SA = schema.service_agreements
_LINK = schema.sa_sp_links
_PREMISE = schema.premises
# The live statuses as literals in the statement: the chunk read is rendered once and bound
# by position with the ids alone.
_LIVE: list[Any] = [literal_column(f"'{status.value}'") for status in sorted(IN_SERVICE)]


def _stop_facts(sa: Any, account: Any, probes: bool) -> tuple[Any, ...]:
    """A stop request's facts: correlated index lookups by the SA's id and premise, and the
    account's main person."""
    others = _SA.alias("others")
    one: Any = literal_column("1")
    premise = _PREMISE.c
    return (
        exists_probe(select(others.c.id).where(others.c.master_sa_id == sa.id), probes)
        .label("has_sub_sas"),
        exists_probe(select(one).where(others.c.premise_id == sa.premise_id,
                                       others.c.id != sa.id,
                                       others.c.status.in_(_LIVE)), probes)
        .label("live_sa_at_premise"),
        exists_probe(select(one).where(premise.id == sa.premise_id), probes)
        .label("premise_found"),
        exists_probe(select(one).where(premise.id == sa.premise_id, or_(
            premise.landlord_agreement_id.is_not(None),
            premise.parent_premise_id.is_not(None))), probes)
        .label("premise_may_revert"),
        exists_probe(select(one).where(schema.persons.c.id == account.main_person_id), probes)
        .label("main_person_found"),
        select(premise.time_zone).where(premise.id == sa.premise_id)
        .scalar_subquery().label("premise_time_zone"),
    )


_FACTS = {sqlite: chunk_query(sqlite, _stop_facts) for sqlite in (False, True)}
_READ = {sqlite: RawSelect(query, "ids", array=not sqlite) for sqlite, query in _FACTS.items()}


def _others_query(sqlite: bool) -> Any:
    """Other SAs' links at the service points of the chunk's SAs, with their SA's status and
    type. On PostgreSQL each step is a probe: the SA's links by SA, the other links by
    service point, their SA by id."""
    own, other = _LINK.alias("own_link"), _LINK.alias("other_link")
    if sqlite:
        return (select(own.c.sa_id.label("own_sa_id"), other.c.id, other.c.sp_id,
                       other.c.sa_id, other.c.start_date, other.c.stop_date, _SA.c.status,
                       _SA.c.sa_type)
                .select_from(own)
                .join(other, and_(other.c.sp_id == own.c.sp_id, other.c.sa_id != own.c.sa_id))
                .join(_SA, _SA.c.id == other.c.sa_id)
                .where(own.c.sa_id.in_(bindparam("ids", expanding=True))))
    wanted = probed_keys(("ids", "id"))
    own_row = select(own).where(own.c.sa_id == wanted.c.id).offset(literal_column("0")) \
        .lateral("own")
    other_row = (select(other).where(other.c.sp_id == own_row.c.sp_id,
                                     other.c.sa_id != own_row.c.sa_id)
                 .offset(literal_column("0")).lateral("other"))
    sa_row = (select(_SA.c.status, _SA.c.sa_type).where(_SA.c.id == other_row.c.sa_id)
              .limit(literal_column("1")).lateral("other_sa"))
    return (select(own_row.c.sa_id.label("own_sa_id"), other_row.c.id, other_row.c.sp_id,
                   other_row.c.sa_id, other_row.c.start_date, other_row.c.stop_date,
                   sa_row.c.status, sa_row.c.sa_type)
            .select_from(wanted).join(own_row, true()).join(other_row, true())
            .join(sa_row, true()))


_OTHERS = {sqlite: _others_query(sqlite) for sqlite in (False, True)}
_OTHERS_READ = {sqlite: RawSelect(query, "ids", array=not sqlite)
                for sqlite, query in _OTHERS.items()}


def _others_at_service_points(connection: Connection, sa_ids: Sequence[str]
                              ) -> dict[str, tuple[LinkPeriod, ...]]:
    """By SA: the other SAs' links at its service points (each once)."""
    raw = connection.dialect.name == "sqlite"
    found: dict[str, dict[str, LinkPeriod]] = {}
    for part in in_batches(list(dict.fromkeys(sa_ids))):
        for row in dict_rows(connection, _OTHERS_READ[raw], part, ("start_date", "stop_date")):
            found.setdefault(row["own_sa_id"], {})[row["id"]] = LinkPeriod(
                link_id=row["id"], sp_id=row["sp_id"], sa_id=row["sa_id"],
                sa_type=row["sa_type"], status=row["status"], start_date=row["start_date"],
                stop_date=row["stop_date"])
    return {sa_id: tuple(links.values()) for sa_id, links in found.items()}


def read_stop_facts(connection: Connection, sa_ids: Sequence[str]) -> dict[str, StopFacts]:
    """The facts of the SAs (those that exist, with their account) by id."""
    raw = connection.dialect.name == "sqlite"
    chunk = read_chunk(connection, _READ, sa_ids)
    others = _others_at_service_points(connection, list(chunk.sas))
    found: dict[str, StopFacts] = {}
    for sa_id, row in chunk.sas.items():
        stored = chunk.snapshot_rows(row, raw)
        found[sa_id] = StopFacts(
            sa_id=sa_id, account_id=row["account_id"], sa_type=row["sa_type"],
            status=row["status"], start_date=row["start_date"], end_date=row["end_date"],
            master_sa_id=row["master_sa_id"], premise_id=row["premise_id"],
            version=int(row["version"]), main_person_id=stored.account["main_person_id"],
            main_person_found=bool(row["main_person_found"]),
            premise_found=bool(row["premise_found"]),
            premise_may_revert=bool(row["premise_may_revert"]),
            has_sub_sas=bool(row["has_sub_sas"]),
            live_sa_at_premise=bool(row["live_sa_at_premise"]),
            links=tuple(LinkPeriod(
                link_id=link["id"], sp_id=link["sp_id"], sa_id=sa_id, sa_type=row["sa_type"],
                status=row["status"], start_date=link["start_date"],
                stop_date=link["stop_date"]) for link in stored.links),
            others_at_service_points=others.get(sa_id, ()),
            stored=stored)
    return found


class SqlStopUploadFastPath:
    """The set-based path of one ``STOPUPL`` run: its admin data, business date, user and
    rows by key (the chunks' item ids)."""

    def __init__(self, admin: AdminConfig, today: dt.date, user: str,
                 rows: Mapping[str, StopRequestRow]) -> None:
        self.admin = admin
        self.today = today
        self.user = user
        self.rows = rows

    def shortcuts(self, view: CcbView, item_ids: Sequence[str]) -> dict[str, Shortcut]:
        """The chunk's rows that take the set-based path, each with what records it."""
        if not isinstance(view, SqlCcbView) or not item_ids:
            return {}
        rows = [self.rows[key] for key in item_ids]
        named = [row.sa_ids[0] for row in rows if len(row.sa_ids) == 1]
        facts = read_stop_facts(view.connection, named) if named else {}
        return {key: partial(apply_fast_stop, row=row, facts=fact)
                for key, (row, fact) in fast_stops(rows, facts, self.admin, self.today,
                                                   self.user).items()}

    def write(self, view: CcbView, changes: Changes) -> None:
        if isinstance(view, SqlCcbView) and isinstance(changes, SetBasedChanges):
            write_stop_requests(view.connection, changes)


def write_stop_requests(connection: Connection, changes: SetBasedChanges) -> None:
    """The chunk's SAs put to pending stop and their links' stop dates, one statement each."""
    requests = changes.stop_requests
    if not requests:
        return
    raw = connection.dialect.name == "sqlite"
    count = update_many(
        connection, _SA, ("status", "end_date", "stopped_by", "audit", "version"),
        ("id", "version"), [
            {"set:status": SaStatus.PENDING_STOP.value, "set:end_date": request.stop_date,
             "set:stopped_by": request.stopped_by,
             "set:audit": appended_audit(request.facts.stored.audit, (request.entry,)),
             "set:version": request.version, "where:id": request.facts.sa_id,
             "where:version": request.version - 1} for request in requests],
        as_stored=("audit",) if raw else ())
    if count != len(requests):
        first = requests[0]
        raise ConcurrentUpdateError(first.facts.sa_id, schema.SAS.kind,
                                    version_read=first.version - 1)
    update_many(connection, _LINK, ("stop_date",), ("id",), [
        {"set:stop_date": request.stop_date, "where:id": link_id}
        for request in requests for link_id in request.link_ids])


def stop_request_snapshots(written: Changes | None, admin: AdminConfig) -> tuple[
        dict[tuple[str, str], Mapping[str, Any]], dict[tuple[str, str], list[tuple[str, str]]]]:
    """For the sync outbox: the snapshot documents of the SAs a unit put to pending stop
    set-based (an SA whose rows the document cannot be built from is left to the general
    snapshot), and the entities to snapshot for their ``changed`` entries (the SA)."""
    if not isinstance(written, SetBasedChanges) or not written.stop_requests:
        return {}, {}
    documents: dict[tuple[str, str], Mapping[str, Any]] = {}
    targets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for request in written.stop_requests:
        key = (SA, request.facts.sa_id)
        targets[key] = [key]
        rows = request.facts.stored
        if not isinstance(rows, SnapshotRows):
            continue
        stopping = set(request.link_ids)
        document = sa_snapshot_document(
            admin, {**rows.sa, "end_date": request.stop_date}, rows.account,
            [{**link, "stop_date": request.stop_date} if link["id"] in stopping else link
             for link in rows.links],
            rows.service_points, rows.premise_time_zone, status=SaStatus.PENDING_STOP.value)
        if document is not None:
            documents[key] = document
    return documents, targets
