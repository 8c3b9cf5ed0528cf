"""Request bodies of the CCB commands (``POST /api/commands/...``), each turned into the domain
command the CLI runs for the same action (:mod:`sync.ccb.commands`, :mod:`sync.ccb.details`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from sync.api.models import Body, BusinessDate, Code, Id, User
from sync.ccb import commands as cmd
from sync.ccb import details
from sync.ccb.model import Address, FtKind, Phone

Method = Annotated[str, Field(default="phone", min_length=1, max_length=40,
                              pattern=r"^[^\x00-\x1f\x7f]+$",
                              description="contact method of the customer contact recorded "
                                          "(phone, email, letter, in_person, web, fax)")]
Ids = Annotated[list[Id], Field(max_length=200)]
Amount = Annotated[Decimal, Field(max_digits=12, decimal_places=2, allow_inf_nan=False,
                                  description="what the customer owes because of it (a "
                                              "payment is negative); at most two decimals")]
Read = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e12)]


class RequestStopIn(Body):
    """Steps 1.1-1.9: stop the SAs named, or every active premise SA of the account at
    ``premise_id`` (or both), on ``stop_date``."""

    account_id: Id
    stop_date: BusinessDate
    sa_ids: Ids = Field(default_factory=list)
    premise_id: Id | None = None
    forwarding_address: Address | None = None
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.RequestStop:
        return cmd.RequestStop(account_id=self.account_id, stop_date=self.stop_date,
                               sa_ids=tuple(self.sa_ids), premise_id=self.premise_id,
                               forwarding_address=self.forwarding_address,
                               contact_method=self.contact_method, user=self.user)


class StartServiceIn(Body):
    """Start an SA of ``sa_type``; a premise-based SA links every SP at the premise of the SA
    type's service type unless ``sp_ids`` names them."""

    account_id: Id
    sa_type: Code
    start_date: BusinessDate
    premise_id: Id | None = None
    sp_ids: Ids = Field(default_factory=list)
    master_sa_id: Id | None = None
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.StartService:
        return cmd.StartService(account_id=self.account_id, sa_type=self.sa_type,
                                start_date=self.start_date, premise_id=self.premise_id,
                                sp_ids=tuple(self.sp_ids), master_sa_id=self.master_sa_id,
                                contact_method=self.contact_method, user=self.user)


class ChangeStopDateIn(Body):
    """Steps 2.4-2.7, 4.9-5.3: a pending stop's new date."""

    sa_id: Id
    stop_date: BusinessDate
    move_next_start: bool = Field(default=True, description="a back-to-back pending start "
                                                            "moves with the stop")
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.ChangeStopDate:
        return cmd.ChangeStopDate(sa_id=self.sa_id, stop_date=self.stop_date,
                                  move_next_start=self.move_next_start,
                                  contact_method=self.contact_method, user=self.user)


class ChangeStartDateIn(Body):
    """Steps 2.6-2.7, 5.1-5.2: a pending start's new date."""

    sa_id: Id
    start_date: BusinessDate
    move_previous_stop: bool = Field(default=True, description="a pending stop ending on the "
                                                               "old start date moves with it")
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.ChangeStartDate:
        return cmd.ChangeStartDate(sa_id=self.sa_id, start_date=self.start_date,
                                   move_previous_stop=self.move_previous_stop,
                                   contact_method=self.contact_method, user=self.user)


class CancelStopIn(Body):
    """Steps 3.0-3.1, 5.4-5.8: a pending stop back to active."""

    sa_id: Id
    cancel_next_start: bool = Field(default=False, description="also cancel the next "
                                                               "customer's back-to-back start "
                                                               "(5.7)")
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.CancelPendingStop:
        return cmd.CancelPendingStop(sa_id=self.sa_id, cancel_next_start=self.cancel_next_start,
                                     contact_method=self.contact_method, user=self.user)


class CancelStartIn(Body):
    """Steps 2.8-2.9: cancel a pending start (final)."""

    sa_id: Id
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.CancelPendingStart:
        return cmd.CancelPendingStart(sa_id=self.sa_id, contact_method=self.contact_method,
                                      user=self.user)


class SaActionIn(Body):
    """An action on one SA that needs nothing else (activate, stop, cancel SA, reinstate)."""

    sa_id: Id
    user: User


class CompleteFieldActivityIn(Body):
    fa_id: Id
    read_value: Read
    user: User

    def command(self) -> cmd.CompleteFieldActivity:
        return cmd.CompleteFieldActivity(fa_id=self.fa_id, read_value=self.read_value,
                                         user=self.user)


class AssignLandlordAgreementIn(Body):
    agreement_id: Id | None = Field(description="null removes the premises' own agreement")
    premise_ids: Ids
    user: User

    def command(self) -> cmd.AssignLandlordAgreement:
        return cmd.AssignLandlordAgreement(agreement_id=self.agreement_id,
                                           premise_ids=tuple(self.premise_ids), user=self.user)


class GroupPremisesIn(Body):
    parent_premise_id: Id
    premise_ids: Ids
    user: User

    def command(self) -> cmd.GroupPremises:
        return cmd.GroupPremises(parent_premise_id=self.parent_premise_id,
                                 premise_ids=tuple(self.premise_ids), user=self.user)


class StopAtChildPremisesIn(Body):
    account_id: Id
    parent_premise_id: Id
    stop_date: BusinessDate
    forwarding_address: Address | None = None
    contact_method: Method = "phone"
    user: User

    def command(self) -> cmd.StopAtChildPremises:
        return cmd.StopAtChildPremises(
            account_id=self.account_id, parent_premise_id=self.parent_premise_id,
            stop_date=self.stop_date, forwarding_address=self.forwarding_address,
            contact_method=self.contact_method, user=self.user)


class AddFinancialTransactionIn(Body):
    """Freeze a bill segment, payment or adjustment on an SA (7.3-7.5 follow from it)."""

    sa_id: Id
    kind: FtKind
    amount: Amount
    closing_bill_segment: bool = False
    adjustment_type: Code | None = None
    user: User

    def command(self) -> cmd.AddFinancialTransaction:
        return cmd.AddFinancialTransaction(
            sa_id=self.sa_id, kind=self.kind, amount=self.amount.quantize(Decimal("0.01")),
            closing_bill_segment=self.closing_bill_segment,
            adjustment_type=self.adjustment_type, user=self.user)


class CancelFinancialTransactionIn(Body):
    """Steps 6.7-7.0: cancel an FT with a reason (admin ``ft_cancel_reasons``)."""

    ft_id: Id
    reason: Code
    user: User

    def command(self) -> cmd.CancelFinancialTransaction:
        return cmd.CancelFinancialTransaction(ft_id=self.ft_id, reason=self.reason,
                                              user=self.user)


class ChangePersonDetailsIn(Body):
    """Step 2.2: fields left out (null) stay as they are; ``phones`` replaces the list."""

    person_id: Id
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")] | None = None
    email: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")] | None = None
    phones: Annotated[list[Phone], Field(max_length=20)] | None = None
    mailing_address: Address | None = None
    contact_method: Method = "phone"
    user: User

    def command(self) -> details.ChangePersonDetails:
        return details.ChangePersonDetails(
            person_id=self.person_id, name=self.name, email=self.email,
            phones=tuple(self.phones) if self.phones is not None else None,
            mailing_address=self.mailing_address, contact_method=self.contact_method,
            user=self.user)


class ChangeAccountDetailsIn(Body):
    """Step 2.2: the account's mailing premise or address, or its bill cycle."""

    account_id: Id
    mailing_premise_id: Id | None = None
    mailing_address: Address | None = None
    bill_cycle: Code | None = None
    contact_method: Method = "phone"
    user: User

    def command(self) -> details.ChangeAccountDetails:
        return details.ChangeAccountDetails(
            account_id=self.account_id, mailing_premise_id=self.mailing_premise_id,
            mailing_address=self.mailing_address, bill_cycle=self.bill_cycle,
            contact_method=self.contact_method, user=self.user)


class SetForwardingAddressIn(Body):
    """Step 2.3: set (an address) or clear (null) the forwarding address of a pending stop."""

    sa_id: Id
    forwarding_address: Address | None
    contact_method: Method = "phone"
    user: User

    def command(self) -> details.UpdatePendingStop:
        return details.UpdatePendingStop(sa_id=self.sa_id,
                                         forwarding_address=self.forwarding_address,
                                         contact_method=self.contact_method, user=self.user)

