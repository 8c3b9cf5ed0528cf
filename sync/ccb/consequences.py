"""What happens when an SA reaches stopped (40): the stop consequences (steps 3.4–4.4).

:func:`run_stop_consequences` is the single extension point, called by
:func:`sync.ccb.lifecycle.stop` for every SA that reaches 40, inside the same unit of work. It
applies the forwarding mailing address stored at request time (steps 1.9, 3.4) and stops the
SA's sub SAs with it (step 4.4). The other consequences of SPEC.md section 4 (SA type stop
algorithms, non-billed budget, severance and collection processes, final bill, deposit, budget,
auto-stop of non-premise SAs) are added here.
"""

from __future__ import annotations

from sync.ccb.lifecycle import Action, set_stop, transition
from sync.ccb.model import SaStatus, ServiceAgreement
from sync.ccb.work import Work


def run_stop_consequences(work: Work, sa: ServiceAgreement) -> None:
    apply_forwarding_address(work, sa)
    stop_sub_sas(work, sa)


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
    work.note(f"account {account.id} mailing address now {address.one_line()}")


def stop_sub_sas(work: Work, master: ServiceAgreement) -> None:
    """Step 4.4: sub SAs go to pending stop with their master and to stopped with it."""
    if master.end_date is None:
        return
    for sub in work.sub_sas(master.id):
        if sub.status is SaStatus.ACTIVE:
            sub = set_stop(work, sub, max(master.end_date, sub.start_date), master.stopped_by
                           or sub.created_by, details=f"master SA {master.id} stopped")
        if sub.status is SaStatus.PENDING_STOP:
            stopped = transition(work, sub, Action.STOP, f"master SA {master.id} stopped")
            work.note(f"sub SA {sub.id} stopped with master SA {master.id}")
            run_stop_consequences(work, stopped)
