"""What happens when an SA reaches stopped (40): the stop consequences (steps 3.3-4.4).

:func:`run_stop_consequences` is the single extension point, called by
:func:`sync.ccb.lifecycle.stop` for every SA that reaches 40 (manual stop, the activation batch,
the immediate-stop algorithm) and here for the SAs a stop takes with it (auto-stop non-premise
SAs, sub SAs), inside the same unit of work. In order:

1. the SA type's stop algorithms (``NB-SAST``, ``C2M-SAST-RF``; :mod:`sync.ccb.stop_algorithms`);
2. the forwarding mailing address applied to the account and its main person (1.9, 3.4);
3. the SA's severance processes and their events canceled (3.7);
4. the SA removed from its collection processes; a process left without SA in service is
   canceled (3.8-3.9);
5. when no other SA of the account is in service: final bill flagged for the bill cycle (4.0)
   and the account's budgets canceled (4.2);
6. the deposit SA of the SA's deposit class to pending stop when no other SA of that class is
   in service (4.1);
7. when no other premise-based SA of the account is in service: its auto-stop non-premise SAs
   stop on the same date (4.3);
8. the sub SAs stop with their master (4.4).

"In service" means pending start, active or pending stop: an SA about to start still needs
the deposit and keeps the account open. Deposit SAs never count as service. Each consequence
is noted for the user and written to the stopped SA's audit log.
"""

from __future__ import annotations

import datetime as dt

from sync.ccb.lifecycle import Action, record, set_stop, transition
from sync.ccb.model import IN_SERVICE, CreatedBy, ProcessStatus, SaStatus, ServiceAgreement
from sync.ccb.stop_algorithms import CONSEQUENCE, run_stop_algorithms
from sync.ccb.work import Work


def run_stop_consequences(work: Work, sa: ServiceAgreement) -> None:
    run_stop_algorithms(work, sa)
    apply_forwarding_address(work, sa)
    cancel_severance_processes(work, sa)
    leave_collection_processes(work, sa)
    if not others_in_service(work, sa):
        flag_final_bill(work, sa)
        cancel_budgets(work, sa)
    stop_deposit(work, sa)
    if not others_in_service(work, sa, premise_based=True) and _premise_based(work, sa):
        auto_stop_non_premise_sas(work, sa)
    stop_sub_sas(work, sa)


def _is_deposit(work: Work, sa: ServiceAgreement) -> bool:
    sa_type = work.admin.sa_types.get(sa.sa_type)
    return sa_type is not None and sa_type.is_deposit


def _premise_based(work: Work, sa: ServiceAgreement) -> bool:
    sa_type = work.admin.sa_types.get(sa.sa_type)
    return sa_type is not None and sa_type.premise_based


def others_in_service(work: Work, sa: ServiceAgreement, *, premise_based: bool = False,
                      deposit_class: str | None = None) -> list[ServiceAgreement]:
    """The account's other SAs in service (deposit SAs never count), optionally only the
    premise-based ones or those of one deposit class."""
    found = []
    for other in work.sas_of_account(sa.account_id):
        sa_type = work.admin.sa_types.get(other.sa_type)
        if other.id == sa.id or other.status not in IN_SERVICE or sa_type is None \
                or sa_type.is_deposit:
            continue
        if premise_based and not sa_type.premise_based:
            continue
        if deposit_class is not None and sa_type.deposit_class != deposit_class:
            continue
        found.append(other)
    return found


def apply_forwarding_address(work: Work, sa: ServiceAgreement) -> None:
    """Steps 1.9/3.4: the stored forwarding address becomes the account's and the main
    person's mailing address once the SA is stopped."""
    address = sa.forwarding_address
    if address is None:
        return
    account = work.account(sa.account_id)
    if account is None:
        return
    if account.mailing_address != address:
        work.save_account(account.model_copy(update={"mailing_address": address,
                                                     "mailing_premise_id": None}))
    person = work.person(account.main_person_id)
    if person is not None and person.mailing_address != address:
        work.save_person(person.model_copy(update={"mailing_address": address}))
    record(work, sa, CONSEQUENCE,
           f"account {account.id} mailing address now {address.one_line()}")


def cancel_severance_processes(work: Work, sa: ServiceAgreement) -> None:
    """Step 3.7: a stopped SA is no longer severed; its severance processes and their
    events are canceled."""
    for process in work.severance_processes_of_sa(sa.id):
        if process.status is not ProcessStatus.ACTIVE:
            continue
        events = tuple(event.model_copy(update={"status": ProcessStatus.CANCELED})
                       if event.status is ProcessStatus.ACTIVE else event
                       for event in process.events)
        work.save_severance_process(process.model_copy(
            update={"status": ProcessStatus.CANCELED, "events": events}))
        record(work, sa, CONSEQUENCE, f"severance process {process.id} of SA {sa.id} canceled"
                                      f" with its {len(process.events)} event(s)")


def leave_collection_processes(work: Work, sa: ServiceAgreement) -> None:
    """Steps 3.8-3.9: the SA leaves its collection processes; a process left without any SA
    in service is canceled."""
    for process in work.collection_processes_of_account(sa.account_id):
        if process.status is not ProcessStatus.ACTIVE or sa.id not in process.sa_ids:
            continue
        remaining = tuple(sa_id for sa_id in process.sa_ids if sa_id != sa.id)
        in_service = [sa_id for sa_id in remaining
                      if (other := work.sa(sa_id)) is not None and other.status in IN_SERVICE]
        status = ProcessStatus.ACTIVE if in_service else ProcessStatus.CANCELED
        work.save_collection_process(process.model_copy(
            update={"sa_ids": remaining, "status": status}))
        line = f"SA {sa.id} removed from collection process {process.id}"
        if status is ProcessStatus.CANCELED:
            line += "; no SA in service left, the process is canceled"
        record(work, sa, CONSEQUENCE, line)


def flag_final_bill(work: Work, sa: ServiceAgreement) -> None:
    """Step 4.0: the account's last SA in service stopped: its bill cycle bills it at the next
    run, with the final bill (the account's ``final_bill_pending`` flag)."""
    account = work.account(sa.account_id)
    if account is None or account.final_bill_pending:
        return
    work.save_account(account.model_copy(update={"final_bill_pending": True}))
    record(work, sa, CONSEQUENCE, f"account {account.id} final bill pending: bill cycle"
                                  f" {account.bill_cycle} bills it at its next run")


def cancel_budgets(work: Work, sa: ServiceAgreement) -> None:
    """Step 4.2: with no service left, the account's (billed) budgets are canceled."""
    for budget in work.budgets_of_account(sa.account_id):
        if budget.non_billed or budget.status is not ProcessStatus.ACTIVE:
            continue
        work.save_budget(budget.model_copy(update={"status": ProcessStatus.CANCELED}))
        record(work, sa, CONSEQUENCE, f"budget {budget.id} of account {sa.account_id}"
                                      " canceled: no service left")


def stop_deposit(work: Work, sa: ServiceAgreement) -> None:
    """Step 4.1: the deposit SA of the stopped SA's deposit class goes to pending stop (its
    refund) when no other SA of that class is in service on the account."""
    sa_type = work.admin.sa_types.get(sa.sa_type)
    if sa_type is None or sa_type.is_deposit or sa_type.deposit_class is None \
            or sa.end_date is None:
        return
    deposit_class = sa_type.deposit_class
    if others_in_service(work, sa, deposit_class=deposit_class):
        return
    why = f"no SA of deposit class {deposit_class} in service after SA {sa.id} stopped"
    for deposit in work.sas_of_account(sa.account_id):
        deposit_type = work.admin.sa_types.get(deposit.sa_type)
        if deposit.status is not SaStatus.ACTIVE or deposit_type is None \
                or not deposit_type.is_deposit or deposit_type.deposit_class != deposit_class:
            continue
        set_stop(work, deposit, max(sa.end_date, deposit.start_date),
                 CreatedBy(kind="system", reason="deposit refund", reciprocal_sa_id=sa.id),
                 details=why)
        record(work, sa, CONSEQUENCE, f"deposit SA {deposit.id} to pending stop: {why}")


def auto_stop_non_premise_sas(work: Work, sa: ServiceAgreement) -> None:
    """Step 4.3: the account's last premise-based SA stopped: its non-premise SAs whose type
    says auto-stop stop on the same date."""
    assert sa.end_date is not None
    for other in work.sas_of_account(sa.account_id):
        other_type = work.admin.sa_types.get(other.sa_type)
        if other_type is None or other_type.premise_based or not other_type.auto_stop \
                or other_type.is_deposit or other.status not in (SaStatus.ACTIVE,
                                                                 SaStatus.PENDING_STOP):
            continue
        why = f"auto-stop: last premise-based SA {sa.id} of account {sa.account_id} stopped"
        _stop_with(work, other, sa.end_date, sa.stopped_by or other.created_by, why)
        record(work, sa, CONSEQUENCE, f"non-premise SA {other.id} stopped on"
                                      f" {sa.end_date.isoformat()} (auto-stop)")


def stop_sub_sas(work: Work, master: ServiceAgreement) -> None:
    """Step 4.4: sub SAs go to pending stop with their master and to stopped with it."""
    if master.end_date is None:
        return
    for sub in work.sub_sas(master.id):
        if sub.status in (SaStatus.ACTIVE, SaStatus.PENDING_STOP):
            _stop_with(work, sub, master.end_date, master.stopped_by or sub.created_by,
                       f"master SA {master.id} stopped")
            record(work, master, CONSEQUENCE,
                   f"sub SA {sub.id} stopped with master SA {master.id}")


def _stop_with(work: Work, sa: ServiceAgreement, stop_date: dt.date, by: CreatedBy,
               why: str) -> None:
    """Stop an SA together with another on ``stop_date`` (no fieldwork of its own to wait
    for), then run its own stop consequences."""
    current = work.sa(sa.id) or sa
    when = max(stop_date, current.start_date)
    if current.status is SaStatus.ACTIVE or current.end_date != when:
        current = set_stop(work, current, when, by, details=why)
    stopped = transition(work, current, Action.STOP, why)
    run_stop_consequences(work, stopped)
