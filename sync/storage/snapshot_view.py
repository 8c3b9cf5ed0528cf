"""A view that answers the reads of the sync snapshots of many entities from a few queries.

The sync outbox snapshots every SA, person and relationship a unit of work changed
(:mod:`sync.mapping.snapshots`): an SA's snapshot reads the SA, its links, their service points,
its premise and account. Read one entity at a time, that is five to seven queries per changed
SA. :class:`SnapshotView` loads them for all the unit's entities at once, one ``IN`` query per
table, and takes the entities the unit has just written (``SqlCcbView.written``) as they are:
the database holds exactly those now. The snapshot functions run unchanged over it, so a
snapshot is the same whichever view built it; a read it was not loaded for goes to the
database as usual.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, select

from sync.ccb.changes import ACCOUNT, PERSON, PREMISE, SA, SA_RELATIONSHIP, SERVICE_POINT
from sync.ccb.model import Account, Person, Premise, SaSpLink, ServiceAgreement, ServicePoint
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import in_batches
from sync.storage.ccb_schema import EntityTable
from sync.storage.ccb_view import SqlCcbView


class SnapshotView(SqlCcbView):
    """:class:`SqlCcbView` with the snapshot reads of chosen entities loaded in bulk."""

    def __init__(self, view: SqlCcbView) -> None:
        super().__init__(view.connection, view.written)
        written = view.written
        self._by_id: dict[str, dict[str, Any]] = {
            "sas": dict(written.sas) if written else {},
            "accounts": dict(written.accounts) if written else {},
            "persons": dict(written.persons) if written else {},
            "premises": dict(written.premises) if written else {},
            "service_points": dict(written.service_points) if written else {},
        }
        self._links_of_sa: dict[str, list[SaSpLink]] = {}
        self._sas_of_account: dict[str, list[ServiceAgreement]] = {}
        self._sas_at_premise: dict[str, list[ServiceAgreement]] = {}
        self._links_at_sp: dict[str, list[SaSpLink]] = {}

    # --- loading ------------------------------------------------------------------------------

    def load_changed(self, changed: Iterable[tuple[str, str]]) -> None:
        """What :func:`~sync.mapping.snapshots.synchronized_entities` reads for ``changed``:
        the SAs of changed accounts and premises, the links at changed service points."""
        wanted: dict[str, list[str]] = defaultdict(list)
        for entity_type, entity_id in changed:
            wanted[entity_type].append(entity_id)
        sa = schema.service_agreements.c
        self._load_sa_groups(self._sas_of_account, sa.account_id, wanted[ACCOUNT])
        self._load_sa_groups(self._sas_at_premise, sa.premise_id, wanted[PREMISE])
        self._load_groups(self._links_at_sp, schema.LINKS, schema.sa_sp_links.c.sp_id,
                          wanted[SERVICE_POINT])

    def _load_sa_groups(self, groups: dict[str, list[ServiceAgreement]], column: Column[Any],
                        keys: Sequence[str]) -> None:
        """The SAs per ``column`` value: their ids first, then only the SAs not known yet
        (usually none: an account changed with its SAs in the same unit)."""
        missing = [key for key in dict.fromkeys(keys) if key not in groups]
        members: dict[str, list[str]] = {key: [] for key in missing}
        id_column = schema.service_agreements.c.id
        for part in in_batches(missing):
            for key, sa_id in self.connection.execute(
                    select(column, id_column).where(column.in_(part)).order_by(id_column)):
                members[key].append(sa_id)
        self._load_ids("sas", schema.SAS, [sa_id for ids in members.values() for sa_id in ids])
        known = self._by_id["sas"]
        for key, ids in members.items():
            groups[key] = [known[sa_id] for sa_id in ids if known.get(sa_id) is not None]

    def load_targets(self, targets: Iterable[tuple[str, str]]) -> None:
        """What the snapshots of ``targets`` (SAs, persons, relationships) read."""
        sa_ids: list[str] = []
        person_ids: list[str] = []
        for entity_type, entity_id in targets:
            if entity_type in (SA, SA_RELATIONSHIP):
                sa_ids.append(entity_id)
            elif entity_type == PERSON:
                person_ids.append(entity_id)
        sa_ids = list(dict.fromkeys(sa_ids))
        self._load_ids("sas", schema.SAS, sa_ids)
        self._load_groups(self._links_of_sa, schema.LINKS, schema.sa_sp_links.c.sa_id, sa_ids)
        sas = [sa for sa in (self._by_id["sas"].get(sa_id) for sa_id in sa_ids)
               if sa is not None]
        self._load_ids("accounts", schema.ACCOUNTS, [sa.account_id for sa in sas])
        self._load_ids("premises", schema.PREMISES,
                       [sa.premise_id for sa in sas if sa.premise_id is not None])
        self._load_ids("service_points", schema.SERVICE_POINTS,
                       [link.sp_id for sa_id in sa_ids
                        for link in self._links_of_sa.get(sa_id, [])])
        self._load_ids("persons", schema.PERSONS, person_ids)

    def _load_ids(self, name: str, kind: EntityTable, ids: Sequence[str]) -> None:
        known = self._by_id[name]
        missing = [entity_id for entity_id in dict.fromkeys(ids) if entity_id not in known]
        for entity in self._many_in(kind, "id", missing):
            known[entity.id] = entity
        for entity_id in missing:
            known.setdefault(entity_id, None)  # looked for and not found

    def _load_groups(self, groups: dict[str, list[Any]], kind: EntityTable, column: Column[Any],
                     keys: Sequence[str]) -> None:
        missing = [key for key in dict.fromkeys(keys) if key not in groups]
        for key in missing:
            groups[key] = []
        for entity in self._many_in(kind, column.name, missing):  # by id, like single reads
            groups[getattr(entity, column.name)].append(entity)

    def _known(self, name: str, entity_id: str) -> tuple[bool, Any]:
        table = self._by_id[name]
        return (True, table[entity_id]) if entity_id in table else (False, None)

    # --- the reads of the snapshots ----------------------------------------------------------

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        loaded, found = self._known("sas", sa_id)
        return found if loaded else super().sa(sa_id)

    def account(self, account_id: str) -> Account | None:
        loaded, found = self._known("accounts", account_id)
        return found if loaded else super().account(account_id)

    def person(self, person_id: str) -> Person | None:
        loaded, found = self._known("persons", person_id)
        return found if loaded else super().person(person_id)

    def premise(self, premise_id: str) -> Premise | None:
        loaded, found = self._known("premises", premise_id)
        return found if loaded else super().premise(premise_id)

    def service_point(self, sp_id: str) -> ServicePoint | None:
        loaded, found = self._known("service_points", sp_id)
        return found if loaded else super().service_point(sp_id)

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        found = self._links_of_sa.get(sa_id)
        return list(found) if found is not None else super().links_of_sa(sa_id)

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        found = self._sas_of_account.get(account_id)
        return list(found) if found is not None else super().sas_of_account(account_id)

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]:
        found = self._sas_at_premise.get(premise_id)
        return list(found) if found is not None else super().sas_at_premise(premise_id)

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]:
        found = self._links_at_sp.get(sp_id)
        return list(found) if found is not None else super().links_at_sp(sp_id)
