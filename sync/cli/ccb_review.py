"""``c2m-sync ccb`` for steps 2.0–2.3: the impact of changing a pending stop (``sa impact``),
person and account details (``person update``, ``account update``) and the forwarding address
of a pending stop (``set-forwarding-address``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, TypeAlias

from pydantic import ValidationError

from sync.ccb.details import (
    ChangeAccountDetails,
    ChangePersonDetails,
    DetailsCommand,
    PendingStopImpact,
    UpdatePendingStop,
    pending_stop_impact,
)
from sync.ccb.dispatch import unit_of_work
from sync.ccb.model import Address, Phone
from sync.cli.common import CliError, Context

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
CommandFactory = Callable[..., argparse.ArgumentParser]


def parse_address(option: str, text: str) -> Address:
    try:
        return Address.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise CliError(f"{option}: not JSON: {error.msg}") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in error.errors())
        raise CliError(f"{option}: not an address: {problems}") from None


def parse_phone(text: str) -> Phone:
    kind, colon, number = text.partition(":")
    if not colon or not kind.strip() or not number.strip():
        raise CliError(f"--phone: {text!r} is not TYPE:NUMBER")
    return Phone(type=kind.strip(), number=number.strip())


def _run(context: Context, command: DetailsCommand) -> int:
    from sync.cli.ccb import refusals_as_cli_errors, run_unit

    clock = context.clock

    def handler(context: Context, _args: argparse.Namespace) -> int:
        return run_unit(context, unit_of_work(command, context.admin, clock.business_date(),
                                              clock.now()))

    return refusals_as_cli_errors(handler)(context, argparse.Namespace())


def _person_update(context: Context, args: argparse.Namespace) -> int:
    phones = tuple(parse_phone(text) for text in args.phone) if args.phone else None
    if phones:
        phones = (phones[0].model_copy(update={"primary": True}), *phones[1:])
    address = (parse_address("--mailing-address", args.mailing_address)
               if args.mailing_address is not None else None)
    return _run(context, ChangePersonDetails(
        person_id=args.person, name=args.name, email=args.email, phones=phones,
        mailing_address=address, contact_method=args.method, user=args.user))


def add_account_update_options(parser: argparse.ArgumentParser) -> None:
    """``ccb account update ACCOUNT ...`` shares the parser of the ``ccb account`` view."""
    group = parser.add_argument_group("update (ccb account update ACCOUNT ...; step 2.2)")
    group.add_argument("--mailing-premise", help="send the account's mail to this premise")
    group.add_argument("--mailing-address", help="mailing address as JSON")
    group.add_argument("--bill-cycle")
    group.add_argument("--method", default="phone", help="contact method (default phone)")
    group.add_argument("--user", default=None, help="who does it (default: $USER, else csr)")


def account_update(context: Context, args: argparse.Namespace) -> int:
    from sync.cli.ccb import default_user

    address = (parse_address("--mailing-address", args.mailing_address)
               if args.mailing_address is not None else None)
    return _run(context, ChangeAccountDetails(
        account_id=args.update_account, mailing_premise_id=args.mailing_premise,
        mailing_address=address, bill_cycle=args.bill_cycle, contact_method=args.method,
        user=args.user or default_user()))


def _set_forwarding_address(context: Context, args: argparse.Namespace) -> int:
    address = None if args.clear else parse_address("--address", args.address or "")
    return _run(context, UpdatePendingStop(sa_id=args.sa, forwarding_address=address,
                                           contact_method=args.method, user=args.user))


def impact_json(impact: PendingStopImpact) -> dict[str, Any]:
    def brief(sa: Any) -> dict[str, Any] | None:
        if sa is None:
            return None
        return {"id": sa.id, "account_id": sa.account_id, "status": sa.status.value,
                "start_date": sa.start_date, "end_date": sa.end_date}

    return {
        "sa": brief(impact.sa),
        "stop_date": impact.stop_date,
        "forwarding_address": (impact.sa.forwarding_address.model_dump(mode="json")
                               if impact.sa.forwarding_address else None),
        "reciprocal": brief(impact.reciprocal),
        "next_start": brief(impact.next_start),
        "pending_field_activities": [fa.id for fa in impact.pending_field_activities],
        "date_change_moves_others": impact.date_change_moves_others,
        "moved_by_date_change": [sa.id for sa in impact.moved_by_date_change],
    }


def sa_impact(context: Context, sa_id: str) -> int:
    from sync.cli.ccb import open_store, refusals_as_cli_errors

    def handler(context: Context, _args: argparse.Namespace) -> int:
        store = open_store(context)
        try:
            payload = store.read(lambda view: impact_json(pending_stop_impact(view, sa_id)))
        finally:
            store.dispose()

        def human() -> None:
            sa = payload["sa"]
            print(f"SA {sa['id']} (account {sa['account_id']}) stops on {payload['stop_date']}")
            for label, key in (("tied to", "reciprocal"), ("next start", "next_start")):
                other = payload[key]
                if other is not None:
                    print(f"{label}: SA {other['id']} (account {other['account_id']},"
                          f" status {other['status']}, start {other['start_date']})")
            moved = payload["moved_by_date_change"]
            print("a date change moves: " + (", ".join(moved) if moved else "nothing else"))
            fas = payload["pending_field_activities"]
            print("pending field activities: " + (", ".join(fas) if fas else "none"))

        context.emit(payload, human)
        return 0

    return refusals_as_cli_errors(handler)(context, argparse.Namespace())


def register(sub: Subparsers, command: CommandFactory) -> None:
    person = sub.add_parser("person", help="person details (step 2.2)")
    person_sub = person.add_subparsers(dest="person_command", required=True, metavar="ACTION")
    update = command(person_sub, "update", "change a person's name, email, phones or mailing"
                     " address (2.2)", _person_update)
    update.add_argument("person")
    update.add_argument("--name", help="LAST,FIRST (validated by the installation)")
    update.add_argument("--email")
    update.add_argument("--phone", action="append", default=[],
                        help="TYPE:NUMBER, repeatable; replaces the list, the first is primary")
    update.add_argument("--mailing-address", help="mailing address as JSON")
    update.add_argument("--method", default="phone", help="contact method (default phone)")

    forward = command(sub, "set-forwarding-address",
                      "set or clear the forwarding address of a pending stop (2.3)",
                      _set_forwarding_address)
    forward.add_argument("sa")
    choice = forward.add_mutually_exclusive_group(required=True)
    choice.add_argument("--address", help="forwarding address as JSON")
    choice.add_argument("--clear", action="store_true", help="remove the forwarding address")
    forward.add_argument("--method", default="phone", help="contact method (default phone)")

