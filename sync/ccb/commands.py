"""CSR and system commands on CCB service (inputs only; the handlers are in
:mod:`sync.ccb.stop_start`, :mod:`sync.ccb.premises` and :mod:`sync.ccb.finance_commands`,
dispatched by :func:`sync.ccb.dispatch.unit_of_work`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sync.ccb.model import Address, FtKind

DEFAULT_USER = "csr1"


@dataclass(frozen=True)
class RequestStop:
    """Steps 1.1–1.9: stop the named SAs, or every active premise SA of the account at
    ``premise_id`` (or both), on ``stop_date``."""

    account_id: str
    stop_date: dt.date
    sa_ids: tuple[str, ...] = ()
    premise_id: str | None = None
    forwarding_address: Address | None = None
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class StartService:
    """Start an SA of ``sa_type`` for the account; a premise-based SA links every SP at the
    premise of the SA type's service type unless ``sp_ids`` names them."""

    account_id: str
    sa_type: str
    start_date: dt.date
    premise_id: str | None = None
    sp_ids: tuple[str, ...] = ()
    master_sa_id: str | None = None
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class ChangeStopDate:
    """Steps 2.4–2.7, 4.9–5.3: a pending stop's new date. A pending start that began on the
    old stop date (back-to-back) moves with it when ``move_next_start``; one the system tied
    to a landlord's stop always does."""

    sa_id: str
    stop_date: dt.date
    move_next_start: bool = True
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class ChangeStartDate:
    """Steps 2.6–2.7, 5.1–5.2: a pending start's new date; a pending stop that ended on the old
    start date moves with it when ``move_previous_stop`` (always for the landlord's)."""

    sa_id: str
    start_date: dt.date
    move_previous_stop: bool = True
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class CancelPendingStop:
    """Steps 3.0–3.1, 5.4–5.8: back to active; with ``cancel_next_start`` the back-to-back
    pending start of the next customer is canceled in the same command (5.7–5.8, 2.8–2.9)."""

    sa_id: str
    cancel_next_start: bool = False
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class CancelPendingStart:
    """Steps 2.8–2.9, 5.8: cancel a pending start (final)."""

    sa_id: str
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class ActivateSa:
    """Manual activation (exception processing)."""

    sa_id: str
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class StopSa:
    """Steps 3.2–3.3: manual stop (exception processing)."""

    sa_id: str
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class CompleteFieldActivity:
    """Complete a pending FA with the read taken in the field."""

    fa_id: str
    read_value: float
    completed_at: dt.datetime | None = None
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class AssignLandlordAgreement:
    """Premise management: one landlord agreement for many premises (None removes it)."""

    agreement_id: str | None
    premise_ids: tuple[str, ...]
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class GroupPremises:
    """Premise management: put premises under a parent premise (a multi-unit property)."""

    parent_premise_id: str
    premise_ids: tuple[str, ...]
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class StopAtChildPremises:
    """Premise management: stop the account's service at every child premise of a parent."""

    account_id: str
    parent_premise_id: str
    stop_date: dt.date
    forwarding_address: Address | None = None
    contact_method: str = "phone"
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class AddFinancialTransaction:
    """Freeze a bill segment, payment or adjustment on an SA; ``amount`` is what the customer
    owes because of it (a payment is negative). A stopped SA whose balance reaches zero after
    its final bill closes; a closed SA that gets a new FT is reactivated (steps 7.3-7.4)."""

    sa_id: str
    kind: FtKind
    amount: Decimal
    closing_bill_segment: bool = False
    adjustment_type: str | None = None
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class CancelFinancialTransaction:
    """Steps 6.7-7.0: cancel a bill segment, payment or adjustment with a reason (admin
    ``ft_cancel_reasons``)."""

    ft_id: str
    reason: str
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class CancelSa:
    """Steps 7.1-7.2: cancel an SA created or stopped in error, once every FT is canceled."""

    sa_id: str
    user: str = DEFAULT_USER


@dataclass(frozen=True)
class ReinstateSa:
    """Steps 7.6-7.9: a stopped, reactivated or closed SA back to active, with its sub SAs."""

    sa_id: str
    user: str = DEFAULT_USER


Command = (RequestStop | StartService | ChangeStopDate | ChangeStartDate | CancelPendingStop
           | CancelPendingStart | ActivateSa | StopSa | CompleteFieldActivity
           | AssignLandlordAgreement | GroupPremises | StopAtChildPremises
           | AddFinancialTransaction | CancelFinancialTransaction | CancelSa | ReinstateSa)
