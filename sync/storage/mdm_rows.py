"""MDM entities to and from rows: the loaders every read uses, and the writers of decided state.

A usage subscription or a service point is one row plus ordered child rows, replaced as a whole
on every write. :func:`write_decision` writes one decision (the single-record path);
:func:`write_states` writes the final state of many entities with a handful of statements (the
batch path), which is what lets one transaction hold hundreds of consumed records cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Table, delete, insert, select, update

from sync.mdm.decision import ApplyDecision
from sync.mdm.model import (
    Contact,
    ServicePointCopy,
    UsageSubscription,
)
from sync.mdm.ports import ConsumedPosition
from sync.storage import mdm_schema as t
from sync.storage.bulk_sql import IN_CHUNK, delete_in, in_batches, insert_many, select_in

E = TypeVar("E")


# --- rows -> entities ------------------------------------------------------------------------

_SUBSCRIPTION_COLUMNS = tuple(column.name for column in t.usage_subscriptions.columns)
_SERVICE_POINT_COLUMNS = tuple(column.name for column in t.service_points.columns)
# A child row's owner first, then what its model holds (``seq`` only orders them).
_LINK_COLUMNS = ("external_id", "sp_id", "start_date", "stop_date", "usage_flag", "use_percent")
_GROUP_COLUMNS = ("external_id", "group_code", "start_date", "end_date")
_OVERRIDE_COLUMNS = ("external_id", "factor", "value", "start_date", "end_date")
_COMPONENT_COLUMNS = ("sp_id", "mc_id", "mc_class", "channel")


def _children(connection: Connection, table: Table, columns: Sequence[str],
              ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The child rows of each owner in ``ids``, in ``seq`` order; the owner is column 0."""
    grouped: dict[str, list[tuple[Any, ...]]] = {key: [] for key in ids}
    for row in select_in(connection, table, columns, columns[0], ids,
                         order_by=(columns[0], "seq")):
        grouped[row[0]].append(row)
    return grouped


def load_subscriptions(connection: Connection,
                       condition: ColumnElement[bool]) -> list[UsageSubscription]:
    us = t.usage_subscriptions
    rows = connection.execute(select(*us.columns).where(condition)
                              .order_by(us.c.external_id)).all()
    return _subscriptions(connection, rows)


def load_subscriptions_by(connection: Connection, key: str,
                          values: Iterable[str]) -> list[UsageSubscription]:
    """The subscriptions whose ``key`` column is one of ``values``: what
    ``load_subscriptions(connection, column.in_(values))`` finds, asked in chunks of sorted
    values, each ordered by external id."""
    rows = select_in(connection, t.usage_subscriptions, _SUBSCRIPTION_COLUMNS, key,
                     sorted(set(values)), order_by=("external_id",))
    return _subscriptions(connection, rows)


def load_subscriptions_by_id(connection: Connection,
                             external_ids: Iterable[str]) -> list[UsageSubscription]:
    return load_subscriptions_by(connection, "external_id", external_ids)


def _subscriptions(connection: Connection,
                   rows: Sequence[Sequence[Any]]) -> list[UsageSubscription]:
    ids = [row[0] for row in rows]
    links = _children(connection, t.us_sp_links, _LINK_COLUMNS, ids)
    groups = _children(connection, t.us_usage_groups, _GROUP_COLUMNS, ids)
    overrides = _children(connection, t.us_factor_overrides, _OVERRIDE_COLUMNS, ids)
    # One validation per subscription, its child rows included, from plain values.
    return [UsageSubscription.model_validate({
        **dict(zip(_SUBSCRIPTION_COLUMNS, row, strict=True)),
        "sp_links": [{"sp_id": sp_id, "start": start, "stop": stop, "usage_flag": usage_flag,
                      "use_percent": use_percent}
                     for _, sp_id, start, stop, usage_flag, use_percent in links[row[0]]],
        "usage_groups": [{"group": group, "start": start, "end": end}
                         for _, group, start, end in groups[row[0]]],
        "factor_overrides": [{"factor": factor, "value": value, "start": start, "end": end}
                             for _, factor, value, start, end in overrides[row[0]]],
    }) for row in rows]


def _by_ids(load: Callable[[Connection, ColumnElement[bool]], list[E]], connection: Connection,
            key: ColumnElement[str], ids: Iterable[str]) -> list[E]:
    """What ``load`` finds for ``ids``, asked in chunks of bound parameters."""
    found: list[E] = []
    for part in in_batches(sorted(set(ids)), IN_CHUNK):
        found += load(connection, key.in_(part))
    return found


def load_service_points(connection: Connection,
                        condition: ColumnElement[bool]) -> list[ServicePointCopy]:
    sp = t.service_points
    rows = connection.execute(select(*sp.columns).where(condition).order_by(sp.c.sp_id)).all()
    return _service_points(connection, rows)


def load_service_points_by_id(connection: Connection,
                              sp_ids: Iterable[str]) -> list[ServicePointCopy]:
    """What ``load_service_points(connection, sp_id.in_(sp_ids))`` finds, asked in chunks of
    sorted ids, each ordered by SP id."""
    rows = select_in(connection, t.service_points, _SERVICE_POINT_COLUMNS, "sp_id",
                     sorted(set(sp_ids)), order_by=("sp_id",))
    return _service_points(connection, rows)


def _service_points(connection: Connection,
                    rows: Sequence[Sequence[Any]]) -> list[ServicePointCopy]:
    components = _children(connection, t.measuring_components, _COMPONENT_COLUMNS,
                           [row[0] for row in rows])
    return [ServicePointCopy.model_validate({
        **dict(zip(_SERVICE_POINT_COLUMNS, row, strict=True)),
        "measuring_components": [{"mc_id": mc_id, "mc_class": mc_class, "channel": channel}
                                 for _, mc_id, mc_class, channel in components[row[0]]],
    }) for row in rows]


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
    for table in (*shape.children, shape.table):
        delete_in(connection, table, key, ids)
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

