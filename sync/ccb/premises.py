"""Premise management: multi-unit properties grouped under a parent premise, one landlord
agreement assigned to many premises, and an account's service stopped at every child premise of
a parent, each in one command (one transaction)."""

from __future__ import annotations

import datetime as dt

from sync.ccb.changes import Changes
from sync.ccb.commands import AssignLandlordAgreement, GroupPremises, StopAtChildPremises
from sync.ccb.errors import InvalidCommand, NotFound
from sync.ccb.model import Premise, SaStatus
from sync.ccb.ports import CcbView, IdSource
from sync.ccb.reversion import reevaluate_reversion
from sync.ccb.stop_start import finish, record_contact, require_account, stop_service
from sync.ccb.work import Work
from sync.config.admin import AdminConfig


def require_premise(view: CcbView, premise_id: str, field: str = "premise_id") -> Premise:
    premise = view.premise(premise_id)
    if premise is None:
        raise NotFound("premise", premise_id, field)
    return premise


def premise_tree(view: CcbView, premise_id: str) -> list[Premise]:
    """The premise and every premise below it (children, their children, ...)."""
    found: list[Premise] = []
    pending = [require_premise(view, premise_id)]
    seen: set[str] = set()
    while pending:
        premise = pending.pop(0)
        if premise.id in seen:
            continue
        seen.add(premise.id)
        found.append(premise)
        pending.extend(view.child_premises(premise.id))
    return found


def _reevaluate_under(work: Work, premise_ids: list[str]) -> None:
    """A premise's agreement is inherited below it: pending stops there may now revert."""
    sp_ids = sorted({sp.id for premise_id in premise_ids
                     for premise in premise_tree(work, premise_id)
                     for sp in work.service_points_at(premise.id)})
    reevaluate_reversion(work, sp_ids)


def assign_landlord_agreement(view: CcbView, ids: IdSource, admin: AdminConfig,
                              command: AssignLandlordAgreement, today: dt.date,
                              now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    if command.agreement_id is not None \
            and work.landlord_agreement(command.agreement_id) is None:
        raise NotFound("landlord agreement", command.agreement_id, "agreement_id")
    if not command.premise_ids:
        raise InvalidCommand("landlord agreement", command.agreement_id or "(none)",
                             "premise_ids", "name at least one premise")
    premises = [require_premise(work, premise_id, "premise_ids")
                for premise_id in command.premise_ids]
    for premise in premises:
        if premise.landlord_agreement_id != command.agreement_id:
            work.save_premise(premise.model_copy(
                update={"landlord_agreement_id": command.agreement_id}))
    work.note(f"landlord agreement {command.agreement_id or '(none)'} assigned to"
              f" {len(premises)} premises")
    _reevaluate_under(work, [premise.id for premise in premises])
    return finish(work)


def group_premises(view: CcbView, ids: IdSource, admin: AdminConfig, command: GroupPremises,
                   today: dt.date, now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    parent = require_premise(work, command.parent_premise_id, "parent_premise_id")
    ancestors: set[str] = set()
    current: Premise | None = parent
    while current is not None and current.id not in ancestors:
        ancestors.add(current.id)
        current = (work.premise(current.parent_premise_id)
                   if current.parent_premise_id else None)
    for premise_id in command.premise_ids:
        premise = require_premise(work, premise_id, "premise_ids")
        if premise.id in ancestors:
            raise InvalidCommand("premise", premise.id, "parent_premise_id",
                                 f"cannot be placed under {parent.id!r}, which it contains")
        if premise.parent_premise_id != parent.id:
            work.save_premise(premise.model_copy(update={"parent_premise_id": parent.id}))
    work.note(f"{len(command.premise_ids)} premises grouped under {parent.id}")
    _reevaluate_under(work, list(command.premise_ids))
    return finish(work)


def stop_at_child_premises(view: CcbView, ids: IdSource, admin: AdminConfig,
                           command: StopAtChildPremises, today: dt.date,
                           now: dt.datetime) -> Changes:
    work = Work(view, ids, admin, today, now, command.user)
    account = require_account(work, command.account_id)
    require_premise(work, command.parent_premise_id, "parent_premise_id")
    children = work.child_premises(command.parent_premise_id)
    targets = [sa for child in children for sa in work.sas_at_premise(child.id)
               if sa.account_id == account.id and sa.status is SaStatus.ACTIVE
               and admin.sa_types[sa.sa_type].premise_based]
    if not targets:
        raise InvalidCommand("premise", command.parent_premise_id, "child premises",
                             f"account {account.id!r} has no active service at a child premise")
    stop_service(work, account, targets, command.stop_date, command.forwarding_address)
    record_contact(work, account.id, "STOPSVC", command.contact_method,
                   command.parent_premise_id,
                   f"stop on {command.stop_date.isoformat()} at {len(children)} child premises"
                   f" of {command.parent_premise_id}: SA "
                   + ", ".join(sorted(sa.id for sa in targets)))
    return finish(work)
