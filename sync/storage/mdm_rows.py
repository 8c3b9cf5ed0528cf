"""MDM entities to and from rows: the loaders every read uses, and the writers of decided state.

A usage subscription or a service point is one row plus ordered child rows, replaced as a whole
on every write. :func:`write_decision` writes one decision (the single-record path);
:func:`write_states` writes the final state of many entities with a handful of statements (the
batch path), which is what lets one transaction hold hundreds of consumed records cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, delete, insert, select, update

from sync.mdm.decision import ApplyDecision
from sync.mdm.model import (
    Contact,
    FactorOverride,
    MeasuringComponent,
    ServicePointCopy,
    UsageGroupAssignment,
    UsageSubscription,
    UsSpLink,
)
from sync.mdm.ports import ConsumedPosition
from sync.storage import mdm_schema as t
from sync.storage.bulk_sql import insert_many

E = TypeVar("E")

# Bound parameters per IN list: far below every supported database's limit.
IN_CHUNK = 500


def chunks(values: Sequence[str], size: int = IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# --- rows -> entities ------------------------------------------------------------------------


def _children(connection: Connection, table: Table, owner: str,
              ids: Sequence[str]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {key: [] for key in ids}
    for part in chunks(ids):
        rows = connection.execute(select(table).where(table.c[owner].in_(part))
                                  .order_by(table.c[owner], table.c.seq)).mappings()
        for row in rows:
            grouped[row[owner]].append(row)
    return grouped


def load_subscriptions(connection: Connection,
                       condition: ColumnElement[bool]) -> list[UsageSubscription]:
    query = select(t.usage_subscriptions).where(condition) \
        .order_by(t.usage_subscriptions.c.external_id)
    rows = connection.execute(query).mappings().all()
    ids = [row["external_id"] for row in rows]
    links = _children(connection, t.us_sp_links, "external_id", ids)
    groups = _children(connection, t.us_usage_groups, "external_id", ids)
    overrides = _children(connection, t.us_factor_overrides, "external_id", ids)
    return [UsageSubscription(
        **dict(row),
        sp_links=tuple(UsSpLink(sp_id=r["sp_id"], start=r["start_date"], stop=r["stop_date"],
                                usage_flag=r["usage_flag"], use_percent=r["use_percent"])
                       for r in links[row["external_id"]]),
        usage_groups=tuple(UsageGroupAssignment(group=r["group_code"], start=r["start_date"],
                                                end=r["end_date"])
                           for r in groups[row["external_id"]]),
        factor_overrides=tuple(FactorOverride(factor=r["factor"], value=r["value"],
                                              start=r["start_date"], end=r["end_date"])
                               for r in overrides[row["external_id"]]),
    ) for row in rows]


def load_subscriptions_by_id(connection: Connection,
                             external_ids: Iterable[str]) -> list[UsageSubscription]:
    return _by_ids(load_subscriptions, connection, t.usage_subscriptions.c.external_id,
                   external_ids)


def _by_ids(load: Callable[[Connection, ColumnElement[bool]], list[E]], connection: Connection,
            key: ColumnElement[str], ids: Iterable[str]) -> list[E]:
    """What ``load`` finds for ``ids``, asked in chunks of bound parameters."""
    found: list[E] = []
    for part in chunks(sorted(set(ids))):
        found += load(connection, key.in_(part))
    return found


def load_service_points(connection: Connection,
                        condition: ColumnElement[bool]) -> list[ServicePointCopy]:
    query = select(t.service_points).where(condition).order_by(t.service_points.c.sp_id)
    rows = connection.execute(query).mappings().all()
    components = _children(connection, t.measuring_components, "sp_id",
                           [row["sp_id"] for row in rows])
    return [ServicePointCopy(
        **dict(row),
        measuring_components=tuple(
            MeasuringComponent(mc_id=r["mc_id"], mc_class=r["mc_class"], channel=r["channel"])
            for r in components[row["sp_id"]]),
    ) for row in rows]


def load_service_points_by_id(connection: Connection,
                              sp_ids: Iterable[str]) -> list[ServicePointCopy]:
    return _by_ids(load_service_points, connection, t.service_points.c.sp_id, sp_ids)


def _load_contacts(connection: Connection, condition: ColumnElement[bool]) -> list[Contact]:
    rows = connection.execute(select(t.contacts).where(condition)).mappings()
    return [Contact.model_validate(dict(row)) for row in rows]


def load_contacts_by_id(connection: Connection, contact_ids: Iterable[str]) -> list[Contact]:
    return _by_ids(_load_contacts, connection, t.contacts.c.contact_id, contact_ids)


# --- entities -> rows ------------------------------------------------------------------------


class _Shape:
    """One entity kind's table, key and child tables, and how an entity becomes rows."""

    def __init__(self, table: Table, key: str, children: tuple[Table, ...]) -> None:
        self.table, self.key, self.children = table, key, children


_SUBSCRIPTION = _Shape(t.usage_subscriptions, "external_id",
                       (t.us_sp_links, t.us_usage_groups, t.us_factor_overrides))
_SERVICE_POINT = _Shape(t.service_points, "sp_id", (t.measuring_components,))
_CONTACT = _Shape(t.contacts, "contact_id", ())


def _subscription_rows(us: UsageSubscription) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    row = us.model_dump(exclude={"external_id", "sp_links", "usage_groups", "factor_overrides"})
    row["status"] = us.status.value
    return row, [
        [{"sp_id": link.sp_id, "start_date": link.start, "stop_date": link.stop,
          "usage_flag": link.usage_flag.value, "use_percent": link.use_percent}
         for link in us.sp_links],
        [{"group_code": group.group, "start_date": group.start, "end_date": group.end}
         for group in us.usage_groups],
        [{"factor": fo.factor, "value": fo.value, "start_date": fo.start, "end_date": fo.end}
         for fo in us.factor_overrides],
    ]


def _service_point_rows(sp: ServicePointCopy) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    return ({"sp_type": sp.sp_type, "time_zone": sp.time_zone, "meter_id": sp.meter_id,
             "version": sp.version},
            [[{"mc_id": mc.mc_id, "mc_class": mc.mc_class, "channel": mc.channel}
              for mc in sp.measuring_components]])


def _contact_rows(contact: Contact) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    return contact.model_dump(mode="json", exclude={"contact_id"}), []


def write_decision(connection: Connection, decision: ApplyDecision) -> None:
    """Write what one applied decision changed (update or insert, children replaced)."""
    for sp in decision.service_points:
        _replace(connection, _SERVICE_POINT, sp.sp_id, *_service_point_rows(sp))
    if decision.contact is not None:
        _replace(connection, _CONTACT, decision.contact.contact_id,
                 *_contact_rows(decision.contact))
    if decision.usage_subscription is not None:
        us = decision.usage_subscription
        _replace(connection, _SUBSCRIPTION, us.external_id, *_subscription_rows(us))


def _replace(connection: Connection, shape: _Shape, key_value: str, values: dict[str, Any],
             children: list[list[dict[str, Any]]]) -> None:
    """Update or insert one row, and replace its child rows (numbered in order)."""
    key = shape.key
    for child in shape.children:
        connection.execute(delete(child).where(child.c[key] == key_value))
    updated = connection.execute(update(shape.table).where(shape.table.c[key] == key_value)
                                 .values(values))
    if updated.rowcount == 0:
        connection.execute(insert(shape.table).values({key: key_value, **values}))
    for child, rows in zip(shape.children, children, strict=True):
        if rows:
            connection.execute(insert(child), [{key: key_value, "seq": seq, **row}
                                               for seq, row in enumerate(rows)])


def write_states(connection: Connection, subscriptions: Sequence[UsageSubscription],
                 service_points: Sequence[ServicePointCopy],
                 contacts: Sequence[Contact]) -> None:
    """Write the final state of many entities: per kind, their old rows go (children first)
    and the new ones come in with one multi-row insert per table."""
    _replace_all(connection, _SERVICE_POINT,
                 [(sp.sp_id, *_service_point_rows(sp)) for sp in service_points])
    _replace_all(connection, _CONTACT, [(c.contact_id, *_contact_rows(c)) for c in contacts])
    _replace_all(connection, _SUBSCRIPTION,
                 [(us.external_id, *_subscription_rows(us)) for us in subscriptions])


def _replace_all(connection: Connection, shape: _Shape,
                 entities: list[tuple[str, dict[str, Any], list[list[dict[str, Any]]]]]) -> None:
    if not entities:
        return
    key = shape.key
    ids = [key_value for key_value, _, _ in entities]
    for part in chunks(ids):
        for child in shape.children:
            connection.execute(delete(child).where(child.c[key].in_(part)))
        connection.execute(delete(shape.table).where(shape.table.c[key].in_(part)))
    # Converted once per column and executed by the driver: a batch writes thousands of rows.
    insert_many(connection, shape.table,
                [{key: key_value, **values} for key_value, values, _ in entities])
    for index, child in enumerate(shape.children):
        insert_many(connection, child, [{key: key_value, "seq": seq, **row}
                                        for key_value, _, children in entities
                                        for seq, row in enumerate(children[index])])


# --- consumed positions ----------------------------------------------------------------------


def record_position(connection: Connection, position: ConsumedPosition) -> None:
    """Move the partition's consumed position forward to ``position`` (never back)."""
    c = t.consumed_positions.c
    where = (c.topic == position.topic, c.partition == position.partition)
    current = connection.execute(select(c.offset).where(*where)).scalar()
    if current is None:
        connection.execute(insert(t.consumed_positions).values(
            topic=position.topic, partition=position.partition, offset=position.offset))
    elif position.offset > current:
        connection.execute(update(t.consumed_positions).where(*where)
                           .values(offset=position.offset))

