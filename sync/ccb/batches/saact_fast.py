"""``SAACT``'s set-based path for the common case: what :func:`activate_or_stop` decides for a
due SA that has nothing to wait for and nothing else to change, decided from plain values.

For most due SAs the general rules do the same few things: a ready pending start with no master
becomes active with one audit entry; a pending stop that is its account's only SA becomes
stopped with one audit entry, and when the account's final bill is not flagged yet the flag is
set and a second audit entry says so. Deciding that through models (validate the rows, copy the
SA, dump its whole audit log again) costs far more than the change. :func:`fast_actions` picks
the chunk items for which the outcome is certain from a handful of facts (:class:`SaFacts`,
read for the whole chunk by the store) and :func:`apply_fast` records the same outcome, the
same ``changed`` entries and the same notes in the chunk's work, with the row updates as plain
values (:class:`SetBasedChanges`) for the store to write with one statement per table.

Anything else goes through the general rules in the same unit of work: an SA with a master or
sub SAs, fieldwork or field activities, an open To Do, a forwarding address, a start that
already carries its stop date, stop algorithms other than the two whose effect is nil without
budgets and financial transactions, an account with another SA (another SA in service, a
deposit, an auto-stop SA), budgets or collection processes, severance processes, or an account
shared with another item of the chunk (whose rules could read or change it).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sync.ccb.batches.common import ItemOutcome, Result
from sync.ccb.batches.set_based import (
    FinalBillFlag,
    SaRowFacts,
    SaStatusUpdate,
    SetBasedChanges,
    audit_entry,
)
from sync.ccb.changes import ACCOUNT, SA
from sync.ccb.lifecycle import Action
from sync.ccb.model import SaStatus
from sync.ccb.stop_algorithms import CONSEQUENCE
from sync.ccb.work import Work
from sync.config.admin import AdminConfig

CODE = "SAACT"
DETAILS = f"activation batch ({CODE})"
# Stop algorithms that change nothing for an SA whose account has no budgets and which has no
# financial transactions (the facts checked before an SA takes this path).
NIL_WITHOUT_BUDGETS_OR_FTS = frozenset({"NB-SAST", "C2M-SAST-RF"})


class FastAction(StrEnum):
    ACTIVATE = "activate"
    STOP = "stop"


@dataclass(frozen=True, kw_only=True)
class SaFacts(SaRowFacts):
    """What SAACT's set-based path needs to know about one chunk item."""

    has_forwarding_address: bool
    account_found: bool
    account_version: int
    account_final_bill_pending: bool
    account_bill_cycle: str
    account_sa_count: int  # every SA of the account, this one included
    has_field_activities: bool
    has_open_todo: bool
    has_severance_processes: bool
    has_financial_transactions: bool
    account_has_budgets: bool
    account_has_collection_processes: bool


def fast_action(facts: SaFacts, admin: AdminConfig, today: dt.date,
                shared_account: bool = False) -> FastAction | None:
    """The set-based action for the SA, or None when the general rules must decide."""
    sa_type = admin.sa_types.get(facts.sa_type)
    if sa_type is None or sa_type.fieldwork_required or shared_account:
        return None
    if facts.master_sa_id is not None or facts.has_sub_sas or facts.has_field_activities \
            or facts.has_open_todo or not facts.account_found:
        return None
    if facts.status == SaStatus.PENDING_START.value:
        if facts.start_date > today or facts.end_date is not None:
            return None
        return FastAction.ACTIVATE
    if facts.status == SaStatus.PENDING_STOP.value:
        if facts.end_date is None or facts.end_date > today:
            return None
        if facts.has_forwarding_address or facts.has_severance_processes \
                or facts.has_financial_transactions or facts.account_has_budgets \
                or facts.account_has_collection_processes or facts.account_sa_count != 1:
            return None
        if set(sa_type.stop_algorithms) - NIL_WITHOUT_BUDGETS_OR_FTS:
            return None
        return FastAction.STOP
    return None


def fast_actions(facts: Sequence[SaFacts], admin: AdminConfig,
                 today: dt.date) -> dict[str, tuple[FastAction, SaFacts]]:
    """The chunk's items that take the set-based path, with their action."""
    per_account = Counter(fact.account_id for fact in facts)
    chosen: dict[str, tuple[FastAction, SaFacts]] = {}
    for fact in facts:
        action = fast_action(fact, admin, today, per_account[fact.account_id] > 1)
        if action is not None:
            chosen[fact.sa_id] = (action, fact)
    return chosen


def apply_fast(work: Work, action: FastAction, facts: SaFacts) -> ItemOutcome:
    """Record what :func:`activate_or_stop` records for the SA, as plain row updates."""
    changes = work.changes
    assert isinstance(changes, SetBasedChanges)
    if action is FastAction.ACTIVATE:
        activated = audit_entry(work, Action.ACTIVATE.value, SaStatus.PENDING_START,
                           SaStatus.ACTIVE, DETAILS)
        changes.sa_updates.append(SaStatusUpdate(facts, SaStatus.ACTIVE, (activated,),
                                                 facts.version + 1))
        changes.record_change(SA, facts.sa_id)
        work.note(f"SA {facts.sa_id} active")
        return ItemOutcome("SA", facts.sa_id, Result.CHANGED, "activated")
    stopped = audit_entry(work, Action.STOP.value, SaStatus.PENDING_STOP, SaStatus.STOPPED,
                          DETAILS)
    changes.record_change(SA, facts.sa_id)
    work.note(f"SA {facts.sa_id} stopped")
    entries: tuple[Mapping[str, Any], ...] = (stopped,)
    if not facts.account_final_bill_pending:
        # flag_final_bill: the account saved, then the consequence recorded on the SA.
        changes.final_bill_flags.append(FinalBillFlag(facts.account_id,
                                                      facts.account_version + 1))
        changes.record_change(ACCOUNT, facts.account_id)
        line = (f"account {facts.account_id} final bill pending: bill cycle"
                f" {facts.account_bill_cycle} bills it at its next run")
        work.note(line)
        entries = (stopped, audit_entry(work, CONSEQUENCE, SaStatus.STOPPED, SaStatus.STOPPED,
                                        line))
    changes.sa_updates.append(SaStatusUpdate(facts, SaStatus.STOPPED, entries,
                                             facts.version + 1))
    return ItemOutcome("SA", facts.sa_id, Result.CHANGED, "stopped")
