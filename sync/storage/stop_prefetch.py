"""A view for a unit of work that requests stops for many accounts at once.

A stop request reads about twenty rows one at a time: the account and its main person, the
account's SAs, their links and service points, the premises up the parent chain with their
landlord agreements (reversion), every SA and link at those premises and service points (who
else is there, whether the landlord's SA is pending), sub SAs and field activities. For a unit
of a few hundred requests :class:`PrefetchedAccountsView` reads each of those collections for
all the unit's accounts with one ``IN`` query, in the same order :class:`SqlCcbView` gives, and
answers the rules from memory; a read about anything outside the neighbourhood it loaded goes to
the database as before. It is built inside the unit's transaction, so it answers what the
database held when the unit started; the unit's own decisions are overlaid by
:class:`~sync.ccb.work.Work`, as with any view.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sync.ccb.model import (
    Account,
    FieldActivity,
    LandlordAgreement,
    Person,
    Premise,
    SaSpLink,
    ServiceAgreement,
    ServicePoint,
)
from sync.storage import ccb_schema as schema
from sync.storage.bulk_sql import select_in
from sync.storage.ccb_schema import EntityTable
from sync.storage.ccb_view import SqlCcbView

# Parent premises are followed this many levels up (a building's units, the building, its
# complex); a deeper chain is read one premise at a time by the base view.
_PARENT_LEVELS = 4


def grouped(items: Iterable[Any], attribute: str) -> dict[str, list[Any]]:
    """``items`` by the value of ``attribute`` (items without one are left out), in order."""
    grouped: dict[str, list[Any]] = defaultdict(list)
    for item in items:
        key = getattr(item, attribute)
        if key is not None:
            grouped[key].append(item)
    return grouped


class PrefetchedAccountsView(SqlCcbView):
    """Answers the reads of stop requests for ``account_ids`` from a few bulk queries."""

    def __init__(self, view: SqlCcbView, account_ids: Sequence[str]) -> None:
        super().__init__(view.connection)
        accounts = list(dict.fromkeys(account_ids))
        self._accounts = {a.id: a for a in self._bulk(schema.ACCOUNTS, "id",
                                                      accounts)}
        self._account_ids = frozenset(accounts)
        self._persons = {p.id: p for p in self._bulk(
            schema.PERSONS, "id",
            sorted({a.main_person_id for a in self._accounts.values()}))}
        of_accounts: list[ServiceAgreement] = self._bulk(schema.SAS, "account_id", accounts)
        self._of_account = grouped(of_accounts, "account_id")
        premise_ids = {sa.premise_id for sa in of_accounts if sa.premise_id is not None}
        own_links: list[SaSpLink] = self._bulk(schema.LINKS, "sa_id",
                                               sorted({sa.id for sa in of_accounts}))
        sp_ids = sorted({link.sp_id for link in own_links})
        points: list[ServicePoint] = self._bulk(schema.SERVICE_POINTS, "id",
                                                sp_ids)
        self._points = {sp.id: sp for sp in points}
        premise_ids.update(sp.premise_id for sp in points if sp.premise_id is not None)
        self._premises = self._premise_chains(premise_ids)
        # Everyone at the unit's premises and service points: the landlord, other tenants.
        at_premises: list[ServiceAgreement] = self._bulk(
            schema.SAS, "premise_id", sorted(self._premises),
            known={sa.id: sa for sa in of_accounts})
        self._at_premise = grouped(at_premises, "premise_id")
        self._premise_ids = frozenset(self._premises)
        at_sps: list[SaSpLink] = self._bulk(schema.LINKS, "sp_id", sp_ids,
                                            known={link.id: link for link in own_links})
        self._at_sp = grouped(at_sps, "sp_id")
        self._sp_ids = frozenset(sp_ids)
        self._sas: dict[str, ServiceAgreement] = {sa.id: sa for sa in at_premises}
        self._sas.update((sa.id, sa) for sa in of_accounts)
        # Links and sub SAs of every SA known so far: the rules look at the reciprocal SA's too.
        known = sorted(self._sas)
        links = {link.id: link for link in own_links}
        links.update((link.id, link) for link in at_sps)
        links.update((link.id, link) for link in self._bulk(
            schema.LINKS, "sa_id", sorted(set(known) - {sa.id for sa in of_accounts})))
        self._links_of_sa = grouped(sorted(links.values(), key=lambda link: link.id), "sa_id")
        subs: list[ServiceAgreement] = self._bulk(schema.SAS, "master_sa_id", known)
        self._subs = grouped(subs, "master_sa_id")
        for sa in subs:
            self._sas.setdefault(sa.id, sa)
        self._sa_ids = frozenset(known)
        self._agreements = {agreement.id: agreement for agreement in self._bulk(
            schema.LANDLORD_AGREEMENTS, "id",
            sorted({p.landlord_agreement_id for p in self._premises.values()
                    if p.landlord_agreement_id is not None}))}
        fas: list[FieldActivity] = self._bulk(schema.FIELD_ACTIVITIES,
                                              "sa_id", known)
        self._fas = grouped(fas, "sa_id")

    # --- loading ------------------------------------------------------------------------------

    def _bulk(self, kind: EntityTable, column: str, values: Sequence[str],
              known: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row of ``kind`` whose ``column`` is in ``values``, ordered as the base view
        orders its lists (by id). Rows whose entity is in ``known`` (read by an earlier query
        of this view, in the same transaction) are not read and built again: the SAs at the
        unit's premises are mostly the unit's own SAs, the links at its service points its
        own links, and building an entity from its row (decoding its JSON documents,
        validating the model) costs far more than reading its id."""
        if known:
            ids = [str(row[0]) for row in select_in(self.connection, kind.table, ("id",),
                                                    column, list(dict.fromkeys(values)))]
            by_id = {**known, **{entity.id: entity for entity in self._many_in(
                kind, "id", [id_ for id_ in ids if id_ not in known])}}
            found = [by_id[id_] for id_ in dict.fromkeys(ids) if id_ in by_id]
        else:
            found = self._many_in(kind, column, values)
        found.sort(key=lambda entity: entity.id)
        return found

    def _premise_chains(self, premise_ids: set[str]) -> dict[str, Premise]:
        premises: dict[str, Premise] = {}
        wanted = sorted(premise_ids)
        for _ in range(_PARENT_LEVELS):
            if not wanted:
                break
            for premise in self._bulk(schema.PREMISES, "id", wanted):
                premises[premise.id] = premise
            wanted = sorted({p.parent_premise_id for p in premises.values()
                             if p.parent_premise_id is not None} - set(premises))
        return premises

    # --- CcbView ------------------------------------------------------------------------------

    def account(self, account_id: str) -> Account | None:
        if account_id in self._account_ids:
            return self._accounts.get(account_id)
        return super().account(account_id)

    def person(self, person_id: str) -> Person | None:
        found = self._persons.get(person_id)
        return found if found is not None else super().person(person_id)

    def sa(self, sa_id: str) -> ServiceAgreement | None:
        found = self._sas.get(sa_id)
        return found if found is not None else super().sa(sa_id)

    def sas_of_account(self, account_id: str) -> list[ServiceAgreement]:
        if account_id in self._account_ids:
            return list(self._of_account.get(account_id, []))
        return super().sas_of_account(account_id)

    def sas_at_premise(self, premise_id: str) -> list[ServiceAgreement]:
        if premise_id in self._premise_ids:
            return list(self._at_premise.get(premise_id, []))
        return super().sas_at_premise(premise_id)

    def sub_sas(self, master_sa_id: str) -> list[ServiceAgreement]:
        if master_sa_id in self._sa_ids:
            return list(self._subs.get(master_sa_id, []))
        return super().sub_sas(master_sa_id)

    def links_of_sa(self, sa_id: str) -> list[SaSpLink]:
        if sa_id in self._sa_ids:
            return list(self._links_of_sa.get(sa_id, []))
        return super().links_of_sa(sa_id)

    def links_at_sp(self, sp_id: str) -> list[SaSpLink]:
        if sp_id in self._sp_ids:
            return list(self._at_sp.get(sp_id, []))
        return super().links_at_sp(sp_id)

    def service_point(self, sp_id: str) -> ServicePoint | None:
        found = self._points.get(sp_id)
        return found if found is not None else super().service_point(sp_id)

    def premise(self, premise_id: str) -> Premise | None:
        found = self._premises.get(premise_id)
        return found if found is not None else super().premise(premise_id)

    def landlord_agreement(self, agreement_id: str) -> LandlordAgreement | None:
        found = self._agreements.get(agreement_id)
        return found if found is not None else super().landlord_agreement(agreement_id)

    def field_activities_of_sa(self, sa_id: str) -> list[FieldActivity]:
        if sa_id in self._sa_ids:
            return list(self._fas.get(sa_id, []))
        return super().field_activities_of_sa(sa_id)
