"""Master data files: persons, accounts, premises, SPs, landlord agreements, SAs and reads.

A load file (YAML or JSON) is a mapping of sections, each a list of records whose keys are the
entity's fields (``sync/ccb/model.py``)::

    persons:            [{id, name, is_business, phones, email, mailing_address}]
    accounts:           [{id, main_person_id, other_person_ids, customer_class, ...}]
    premises:           [{id, address, parent_premise_id, landlord_agreement_id, time_zone}]
    service_points:     [{id, premise_id, sp_type, measuring_components, meter_id, time_zone}]
    landlord_agreements: [{id, landlord_person_id, landlord_account_id, preferences}]
    service_agreements: [{id, account_id, sa_type, status, start_date, end_date, premise_id,
                          master_sa_id, created_by, forwarding_address,
                          links: [SP id | {sp_id, id, start_date, stop_date, start_read, ...}]}]
    meter_reads:        [{id, sp_id, read_at, value, read_type, use_on_bill}]

plus the finance sections of :mod:`sync.ccb.finance_loading` (financial transactions, budgets,
collection and severance processes).

Validation reads the whole file before anything is written and reports every problem with the
file, the record (section, index and id) and the field: shape and types, duplicate ids, unknown
references (to the file or to what the database already holds), bad dates, SA/SP types unknown
to the admin data, person names (``C2M-PERNMVAL``). Loading is an upsert by id: a record whose
id exists replaces the stored entity (its version goes up by one, an SA keeps its audit log and
gains a "load" entry); nothing is ever deleted. Versions are the store's business: a record
may not carry one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import yaml

from sync.ccb.changes import Changes
from sync.ccb.loading_checks import SECTIONS, MasterData, Problem, check_master_data
from sync.ccb.model import AuditEntry
from sync.ccb.ports import CcbUnitOfWork, CcbView, IdSource
from sync.config.admin import AdminConfig

__all__ = ["SECTIONS", "MasterData", "MasterDataError", "Problem", "load_master_data",
           "master_data_changes", "parse_text", "validate_master_data"]


class MasterDataError(ValueError):
    """A load file that cannot be loaded; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        lines = [problem.describe(source) for problem in self.problems]
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}, "
                         "nothing loaded\n" + "\n".join(lines))



def parse_text(text: str, source: str) -> Any:
    """YAML or JSON text to plain data (JSON when ``source`` ends in ``.json``)."""
    try:
        if source.lower().endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise MasterDataError(source, [Problem(where, None, None, "", f"JSON syntax error: "
                                                                    f"{error.msg}")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        problem = getattr(error, "problem", None) or str(error)
        raise MasterDataError(source, [Problem(where, None, None, "",
                                               f"YAML syntax error: {problem}")]) from None



def validate_master_data(data: Any, source: str, admin: AdminConfig,
                         view: CcbView) -> MasterData:
    """Check a whole load file; raise :class:`MasterDataError` listing every problem."""
    if not isinstance(data, dict):
        raise MasterDataError(source, [Problem("file", None, None, "",
                                               "must hold a mapping of sections")])
    valid, problems = check_master_data(data, admin, view)
    if problems:
        raise MasterDataError(source, problems)
    return valid


# --- turning validated data into one unit of work ------------------------------------------


def master_data_changes(data: MasterData, view: CcbView, now: dt.datetime, user: str,
                        source: str) -> Changes:
    """The upsert of ``data``: versions follow what is stored, SAs gain a "load" audit entry."""
    changes = Changes()

    def version_after(existing: Any) -> int:
        return 1 if existing is None else int(existing.version) + 1

    for person in data.persons:
        changes.put_person(person.model_copy(
            update={"version": version_after(view.person(person.id))}))
    for account in data.accounts:
        changes.put_account(account.model_copy(
            update={"version": version_after(view.account(account.id))}))
    for premise in data.premises:
        changes.put_premise(premise.model_copy(
            update={"version": version_after(view.premise(premise.id))}))
    for sp in data.service_points:
        changes.put_service_point(sp.model_copy(
            update={"version": version_after(view.service_point(sp.id))}))
    for agreement in data.landlord_agreements:
        changes.put_landlord_agreement(agreement.model_copy(
            update={"version": version_after(view.landlord_agreement(agreement.id))}))
    for sa in data.service_agreements:
        stored = view.sa(sa.id)
        entry = AuditEntry(at=now, user=user, action="load",
                           from_status=stored.status if stored is not None else None,
                           to_status=sa.status, details=f"master data from {source}")
        earlier = stored.audit if stored is not None else ()
        changes.put_sa(sa.model_copy(update={"version": version_after(stored),
                                             "audit": (*earlier, *sa.audit, entry)}))
    for link in data.links:
        changes.put_link(link)
    for read in data.meter_reads:
        changes.put_read(read)
    for ft in data.financial_transactions:
        changes.put_financial_transaction(ft.model_copy(
            update={"version": version_after(view.financial_transaction(ft.id))}))
    for budget in data.budgets:
        changes.put_budget(budget.model_copy(
            update={"version": version_after(view.budget(budget.id))}))
    for process in data.collection_processes:
        changes.put_collection_process(process.model_copy(
            update={"version": version_after(view.collection_process(process.id))}))
    for severance in data.severance_processes:
        changes.put_severance_process(severance.model_copy(
            update={"version": version_after(view.severance_process(severance.id))}))
    counts = data.counts()
    changes.note(f"loaded {source}: " + ", ".join(
        f"{count} {name.replace('_', ' ')}" for name, count in counts.items() if count))
    return changes


def load_master_data(data: Any, source: str, admin: AdminConfig, now: dt.datetime,
                     user: str) -> CcbUnitOfWork:
    """A unit of work that validates ``data`` against the stored state and upserts it."""

    def unit(view: CcbView, ids: IdSource) -> Changes:
        validated = validate_master_data(data, source, admin, view)
        return master_data_changes(validated, view, now, user, source)

    return unit
