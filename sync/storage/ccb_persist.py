"""Writing one unit of work's :class:`~sync.ccb.changes.Changes`: a few statements per table,
not one per entity.

Per entity table, in the order of :data:`~sync.storage.ccb_schema.ENTITY_TABLES`:

- updates of versioned entities: one ``SELECT ... FOR UPDATE`` of the stored versions, which
  finds an entity another unit of work saved since this one read it and reports it as
  :class:`~sync.ccb.errors.ConcurrentUpdateError` (exactly as a single conditional update
  would) and holds the rows; then one ``UPDATE ... WHERE id = :id AND version = :read``
  executed with every parameter set at once, whose summed row count is checked again;
- new versioned entities (version 1): one ``SELECT`` of the ids already present (another unit
  created one after this one found it missing: a concurrent update), then one insert of all;
- unversioned records (links, FAs, reads) are upserts: one ``SELECT`` of the ids present, one
  update of those and one insert of the others;
- the derived rows (a person's phone digits, an account's persons) are deleted and inserted
  for all the entities of the table at once.

Updates go before inserts within a table: a To Do completed and a new one opened for the same
drill key in one unit must free the "one open entry per key" index before the insert takes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, select

from sync.ccb.changes import Changes
from sync.ccb.errors import ConcurrentUpdateError
from sync.ccb.model import Account, Person
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import delete_in, in_batches, insert_many, select_in, update_many
from sync.storage.ccb_schema import EntityTable


def persist(connection: Connection, changes: Changes) -> None:
    """Write everything in ``changes``; raises :class:`ConcurrentUpdateError` when a versioned
    entity is no longer at the version read or a new one exists already."""
    for attribute, kind in schema.ENTITY_TABLES.items():
        entities: dict[str, BaseModel] = getattr(changes, attribute)
        if not entities:
            continue
        if kind.versioned:
            new = [e for e in entities.values() if _version(e) == 1]
            old = [e for e in entities.values() if _version(e) != 1]
            _update_versioned(connection, kind, old)
            _insert_new(connection, kind, new)
        else:
            _upsert(connection, kind, list(entities.values()))
        _write_derived_rows(connection, list(entities.values()))


def _version(entity: BaseModel) -> int:
    return int(getattr(entity, "version"))  # noqa: B009 - versioned entities only


def _entity_id(entity: BaseModel) -> str:
    return str(getattr(entity, "id"))  # noqa: B009 - every entity has an id


def existing_ids(connection: Connection, kind: EntityTable, ids: Sequence[str]) -> set[str]:
    return {str(row[0]) for row in select_in(connection, kind.table, ("id",), "id", ids)}


def _update_versioned(connection: Connection, kind: EntityTable,
                      entities: list[BaseModel]) -> None:
    if not entities:
        return
    _check_versions_read(connection, kind, entities)
    rows = [kind.to_row(entity) for entity in entities]
    count = update_many(connection, kind.table, _set_columns(rows), ("id", "version"), [
        {**{f"set:{name}": value for name, value in row.items()},
         "where:id": row["id"], "where:version": _version(entity) - 1}
        for row, entity in zip(rows, entities, strict=True)])
    if count != len(entities):  # not after the check under lock; a last guard
        raise ConcurrentUpdateError(_entity_id(entities[0]), kind.kind,
                                    version_read=_version(entities[0]) - 1)


def _set_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns an update by id writes: every column of the rows but the id."""
    return [name for name in rows[0] if name != "id"]


def _check_versions_read(connection: Connection, kind: EntityTable,
                         entities: list[BaseModel]) -> None:
    """Refuse the first entity whose stored version is not the one its update read. The rows
    are locked until the end of the transaction (PostgreSQL; SQLite's writer holds the whole
    database), so the bulk update that follows cannot lose a row to another writer: a writer
    that got there first is seen here, and one that comes later waits. Rows are locked in id
    order, so two units locking overlapping sets of a table queue rather than deadlock."""
    table = kind.table
    stored: dict[str, int] = {}
    for part in in_batches([_entity_id(entity) for entity in entities]):
        stored.update((str(row[0]), int(row[1])) for row in connection.execute(
            select(table.c.id, table.c.version).where(table.c.id.in_(part))
            .order_by(table.c.id).with_for_update()))
    for entity in entities:
        if stored.get(_entity_id(entity)) != _version(entity) - 1:
            raise ConcurrentUpdateError(_entity_id(entity), kind.kind,
                                        version_read=_version(entity) - 1)


def _insert_new(connection: Connection, kind: EntityTable, entities: list[BaseModel]) -> None:
    if not entities:
        return
    taken = existing_ids(connection, kind, [_entity_id(entity) for entity in entities])
    for entity in entities:
        if _entity_id(entity) in taken:
            # Another unit of work created it after this one found it missing.
            raise ConcurrentUpdateError(_entity_id(entity), kind.kind, version_read=None)
    insert_many(connection, kind.table, [kind.to_row(entity) for entity in entities])


def _upsert(connection: Connection, kind: EntityTable, entities: list[BaseModel]) -> None:
    """Unversioned records (links, FAs, reads) belong to an SA or SP whose own version guards
    the unit of work; they are written as an upsert."""
    rows = [kind.to_row(entity) for entity in entities]
    present = existing_ids(connection, kind, [row["id"] for row in rows])
    updates = [row for row in rows if row["id"] in present]
    if updates:
        update_many(connection, kind.table, _set_columns(updates), ("id",), [
            {**{f"set:{name}": value for name, value in row.items()}, "where:id": row["id"]}
            for row in updates])
    insert_many(connection, kind.table, [row for row in rows if row["id"] not in present])


def _write_derived_rows(connection: Connection, entities: list[BaseModel]) -> None:
    persons = [entity for entity in entities if isinstance(entity, Person)]
    if persons:
        delete_in(connection, schema.person_phones, "person_id",
                  [person.id for person in persons])
        insert_many(connection, schema.person_phones,
                    [row for person in persons for row in schema.phone_rows(person)])
    accounts = [entity for entity in entities if isinstance(entity, Account)]
    if accounts:
        delete_in(connection, schema.account_persons, "account_id",
                  [account.id for account in accounts])
        insert_many(connection, schema.account_persons,
                    [row for account in accounts for row in schema.account_person_rows(account)])
