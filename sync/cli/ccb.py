"""``c2m-sync ccb ...``: CCB commands (stop, start, date changes, cancels, premise management,
financial transactions, cancel SA, reinstate, To Do work, customer contacts), master data
loading, and the views a CSR works from.

Every command is one unit of work on the CCB store (``--ccb-db-url``); the business date and
time come from the clock (``--business-date``), the user from ``--user`` (default: the
``USER`` environment variable, else ``csr``). Every command takes ``--json``. A refused command
(a CCB rule, a concurrent update, a bad file) prints one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from sync.ccb import commands as cmd
from sync.ccb import contacts, todo
from sync.ccb.changes import Changes
from sync.ccb.dispatch import unit_of_work
from sync.ccb.errors import CcbError
from sync.ccb.loading import MasterDataError, load_master_data, parse_text
from sync.ccb.model import Address, ToDoStatus
from sync.ccb.ports import CcbUnitOfWork, CcbView, IdSource
from sync.cli import ccb_finance, ccb_sync, ccb_views
from sync.cli.common import (
    CliError,
    Context,
    Handler,
    add_json_flag,
    parse_date,
    whole_number,
)
from sync.pipeline.stores import open_outbox
from sync.storage.ccb import CcbStoreError, SqlCcbStore
from sync.text_files import UnreadableFileError, read_text_file

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def default_user() -> str:
    return os.environ.get("USER") or "csr"


def open_store(context: Context) -> SqlCcbStore:
    """The CCB store of the settings with its sync outbox, its tables created when missing."""
    return open_outbox(context.settings.ccb_db_url, context.admin, context.clock).store


def refusals_as_cli_errors(handler: Handler) -> Handler:
    """Business refusals and bad input become one-line CLI errors (exit 1)."""

    @functools.wraps(handler)
    def run(context: Context, args: argparse.Namespace) -> int:
        try:
            return handler(context, args)
        except (CcbError, CcbStoreError) as error:
            raise CliError(str(error)) from None
        except MasterDataError as error:
            raise CliError(str(error)) from None

    return run


def run_unit(context: Context, unit: CcbUnitOfWork) -> int:
    store = open_store(context)
    try:
        changes = store.execute(unit)
    finally:
        store.dispose()
    emit_changes(context, changes)
    return 0


def emit_changes(context: Context, changes: Changes) -> None:
    payload = {
        "notes": changes.notes,
        "changed": [{"entity_type": kind, "entity_id": entity_id}
                    for kind, entity_id in changes.changed],
        "sas": {sa_id: {"status": sa.status.value, "start_date": sa.start_date,
                        "end_date": sa.end_date, "version": sa.version}
                for sa_id, sa in changes.sas.items()},
        "todos": sorted(changes.todos),
        "contacts": sorted(changes.contacts),
        "field_activities": sorted(changes.field_activities),
        "financial_transactions": sorted(changes.financial_transactions),
    }

    def human() -> None:
        for line in changes.notes or ["nothing to change"]:
            print(line)

    context.emit(payload, human)


def _command(parent: Subparsers, name: str, help_text: str, handler: Handler,
             with_user: bool = True) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help_text, description=help_text)
    add_json_flag(parser)
    if with_user:
        parser.add_argument("--user", default=default_user(),
                            help="who does it (default: $USER, else csr)")
    parser.set_defaults(handler=refusals_as_cli_errors(handler))
    return parser


def _forwarding_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("forwarding mailing address (steps 1.7-1.9)")
    for part in ("line1", "line2", "city", "state", "postal-code"):
        group.add_argument(f"--forward-{part}", dest=f"forward_{part.replace('-', '_')}")


def _forwarding_address(args: argparse.Namespace) -> Address | None:
    parts = {name: getattr(args, f"forward_{name}")
             for name in ("line1", "line2", "city", "state", "postal_code")}
    if not any(parts.values()):
        return None
    missing = [name for name in ("line1", "city", "state", "postal_code") if not parts[name]]
    if missing:
        raise CliError("forwarding address: missing " + ", ".join(
            f"--forward-{name.replace('_', '-')}" for name in missing))
    return Address(**{key: value for key, value in parts.items() if value is not None})


def _domain(build: Callable[[argparse.Namespace], cmd.Command]) -> Handler:
    """A handler running the domain command ``build(args)`` as one unit of work."""

    def handler(context: Context, args: argparse.Namespace) -> int:
        clock = context.clock
        command = build(args)
        return run_unit(context, unit_of_work(command, context.admin, clock.business_date(),
                                              clock.now()))

    return handler


def register(commands: Subparsers) -> None:
    ccb = commands.add_parser("ccb", help="CCB service agreements, premises, To Do, contacts")
    sub = ccb.add_subparsers(dest="ccb_command", required=True, metavar="COMMAND")

    load = _command(sub, "load", "load master data from a YAML or JSON file (upsert by id)",
                    _load)
    load.add_argument("file", type=Path)

    stop = _command(sub, "request-stop", "request stop of an account's service (1.1-1.9)",
                    _domain(lambda a: cmd.RequestStop(
                        account_id=a.account, stop_date=a.stop_date, sa_ids=tuple(a.sa),
                        premise_id=a.premise, forwarding_address=_forwarding_address(a),
                        contact_method=a.method, user=a.user)))
    stop.add_argument("account")
    stop.add_argument("--stop-date", type=parse_date, required=True)
    stop.add_argument("--sa", action="append", default=[], help="SA to stop (repeatable)")
    stop.add_argument("--premise", help="stop every premise SA of the account there")
    stop.add_argument("--method", default="phone", help="contact method (default phone)")
    _forwarding_options(stop)

    start = _command(sub, "start", "start service for an account",
                     _domain(lambda a: cmd.StartService(
                         account_id=a.account, sa_type=a.sa_type, start_date=a.start_date,
                         premise_id=a.premise, sp_ids=tuple(a.sp), master_sa_id=a.master_sa,
                         contact_method=a.method, user=a.user)))
    start.add_argument("account")
    start.add_argument("--sa-type", required=True)
    start.add_argument("--start-date", type=parse_date, required=True)
    start.add_argument("--premise")
    start.add_argument("--sp", action="append", default=[], help="SP to link (repeatable)")
    start.add_argument("--master-sa")
    start.add_argument("--method", default="phone")

    change_stop = _command(sub, "change-stop-date", "move a pending stop (2.4-2.7, 4.9-5.3)",
                           _domain(lambda a: cmd.ChangeStopDate(
                               sa_id=a.sa, stop_date=a.stop_date,
                               move_next_start=not a.keep_next_start, user=a.user)))
    change_stop.add_argument("sa")
    change_stop.add_argument("--stop-date", type=parse_date, required=True)
    change_stop.add_argument("--keep-next-start", action="store_true",
                             help="leave a back-to-back pending start where it is")

    change_start = _command(sub, "change-start-date", "move a pending start (2.6-2.7, 5.1-5.2)",
                            _domain(lambda a: cmd.ChangeStartDate(
                                sa_id=a.sa, start_date=a.start_date,
                                move_previous_stop=not a.keep_previous_stop, user=a.user)))
    change_start.add_argument("sa")
    change_start.add_argument("--start-date", type=parse_date, required=True)
    change_start.add_argument("--keep-previous-stop", action="store_true")

    cancel_stop = _command(sub, "cancel-stop", "cancel a pending stop (3.0-3.1, 5.4-5.8)",
                           _domain(lambda a: cmd.CancelPendingStop(
                               sa_id=a.sa, cancel_next_start=a.cancel_next_start,
                               user=a.user)))
    cancel_stop.add_argument("sa")
    cancel_stop.add_argument("--cancel-next-start", action="store_true",
                             help="also cancel the next customer's back-to-back start (5.7)")

    for name, help_text, build in (
        ("cancel-start", "cancel a pending start (2.8-2.9)",
         lambda a: cmd.CancelPendingStart(sa_id=a.sa, user=a.user)),
        ("activate", "activate a pending start now (exception processing)",
         lambda a: cmd.ActivateSa(sa_id=a.sa, user=a.user)),
        ("stop", "stop a pending stop now (3.2-3.3)",
         lambda a: cmd.StopSa(sa_id=a.sa, user=a.user)),
    ):
        _command(sub, name, help_text, _domain(build)).add_argument("sa")

    complete_fa = _command(sub, "complete-fa", "complete a field activity with its read",
                           _domain(lambda a: cmd.CompleteFieldActivity(
                               fa_id=a.fa, read_value=a.read, user=a.user)))
    complete_fa.add_argument("fa")
    complete_fa.add_argument("--read", type=_meter_read, required=True,
                             help="the read taken in the field (a finite number)")

    assign = _command(sub, "assign-landlord", "assign a landlord agreement to premises",
                      _domain(lambda a: cmd.AssignLandlordAgreement(
                          agreement_id=None if a.agreement == "none" else a.agreement,
                          premise_ids=tuple(a.premises), user=a.user)))
    assign.add_argument("agreement", help="landlord agreement id, or 'none' to remove")
    assign.add_argument("premises", nargs="+")

    group = _command(sub, "group-premises", "put premises under a parent premise",
                     _domain(lambda a: cmd.GroupPremises(
                         parent_premise_id=a.parent, premise_ids=tuple(a.premises),
                         user=a.user)))
    group.add_argument("parent")
    group.add_argument("premises", nargs="+")

    children = _command(sub, "stop-children",
                        "stop an account's service at every child premise of a parent",
                        _domain(lambda a: cmd.StopAtChildPremises(
                            account_id=a.account, parent_premise_id=a.parent,
                            stop_date=a.stop_date, forwarding_address=_forwarding_address(a),
                            contact_method=a.method, user=a.user)))
    children.add_argument("account")
    children.add_argument("parent")
    children.add_argument("--stop-date", type=parse_date, required=True)
    children.add_argument("--method", default="phone")
    _forwarding_options(children)

    ccb_finance.register(sub, _command, _domain)
    _register_todo(sub)
    _register_contact(sub)
    ccb_views.register(sub, _command)
    ccb_sync.register(sub, _command)


def _meter_read(text: str) -> float:
    """A meter read: a finite number. ``float`` alone would take ``inf`` and ``nan``, which
    are no read and would reach the database (argparse names ``--read`` when this refuses)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _load(context: Context, args: argparse.Namespace) -> int:
    source = str(args.file)
    try:
        text = read_text_file(args.file)
    except UnreadableFileError as error:
        raise CliError(str(error)) from None
    data = parse_text(text, source)
    clock = context.clock
    return run_unit(context, load_master_data(data, source, context.admin, clock.now(),
                                              args.user))


# --- To Do work (steps 6.1-6.4) ---------------------------------------------------------------


def _todo_unit(action: Callable[[CcbView, Context, argparse.Namespace], Changes]) -> Handler:
    def handler(context: Context, args: argparse.Namespace) -> int:
        def unit(view: CcbView, ids: IdSource) -> Changes:
            return action(view, context, args)
        return run_unit(context, unit)
    return handler


_count = whole_number("count", 0)


def _register_todo(sub: Subparsers) -> None:
    parser = sub.add_parser("todo", help="To Do entries: list, take, log, complete")
    todo_sub = parser.add_subparsers(dest="todo_command", required=True, metavar="ACTION")
    listing = _command(todo_sub, "list", "the worklist, most urgent first",
                       ccb_views.todo_list, with_user=False)
    listing.add_argument("--role")
    listing.add_argument("--type", dest="todo_type")
    listing.add_argument("--status", choices=[s.value for s in ToDoStatus])
    listing.add_argument("--assigned-user")
    listing.add_argument("--unfinished", action="store_true",
                         help="only open and being worked entries, read without the completed"
                              " history")
    listing.add_argument("--limit", type=_count, default=None,
                         help="at most this many entries (all by default)")
    listing.add_argument("--offset", type=_count, default=0,
                         help="skip this many first: the next page starts at offset + limit")
    take = _command(todo_sub, "take", "take an entry to work it (6.1)", _todo_unit(
        lambda view, c, a: todo.take_todo(view, c.admin, a.todo, a.user, c.clock.now())))
    take.add_argument("todo")
    log = _command(todo_sub, "log", "add a log comment (6.2-6.3)", _todo_unit(
        lambda view, c, a: todo.add_todo_log(view, c.admin, a.todo, a.user, a.comment,
                                             c.clock.now())))
    log.add_argument("todo")
    log.add_argument("comment")
    complete = _command(todo_sub, "complete", "complete an entry (6.4)", _todo_unit(
        lambda view, c, a: todo.complete_todo(view, c.admin, a.todo, a.user, c.clock.now(),
                                              a.comment)))
    complete.add_argument("todo")
    complete.add_argument("--comment")


# --- customer contacts (seed 002) ------------------------------------------------------------


def _contact_unit(build: Callable[[CcbView, IdSource, Context, argparse.Namespace], Changes]
                  ) -> Handler:
    def handler(context: Context, args: argparse.Namespace) -> int:
        return run_unit(context, lambda view, ids: build(view, ids, context, args))
    return handler


def _register_contact(sub: Subparsers) -> None:
    parser = sub.add_parser("contact", help="customer contacts: add, log, close, list")
    contact_sub = parser.add_subparsers(dest="contact_command", required=True,
                                        metavar="ACTION")
    add = _command(contact_sub, "add", "record a customer contact", _contact_unit(
        lambda view, ids, c, a: contacts.add_contact(view, ids, c.admin, contacts.AddContact(
            person_id=a.person, contact_type=a.type, user=a.user, method=a.method,
            account_id=a.account, premise_id=a.premise, comments=a.comments or "",
            open=a.open), c.clock.now())))
    add.add_argument("person")
    add.add_argument("--type", required=True, help="contact type (admin data)")
    add.add_argument("--method", default="phone")
    add.add_argument("--account")
    add.add_argument("--premise")
    add.add_argument("--comments")
    add.add_argument("--open", action="store_true", help="keep it open as a case file")
    log = _command(contact_sub, "log", "add a log entry to a contact", _contact_unit(
        lambda view, ids, c, a: contacts.add_contact_log(view, contacts.AddContactLog(
            contact_id=a.contact, user=a.user, comment=a.comment), c.clock.now())))
    log.add_argument("contact")
    log.add_argument("comment")
    characteristic = _command(contact_sub, "characteristic", "add a characteristic",
                              _contact_unit(lambda view, ids, c, a: contacts.add_characteristic(
                                  view, contacts.AddCharacteristic(
                                      contact_id=a.contact, characteristic_type=a.type,
                                      value=a.value))))
    characteristic.add_argument("contact")
    characteristic.add_argument("type")
    characteristic.add_argument("value")
    remind = _command(contact_sub, "remind", "add a reminder", _contact_unit(
        lambda view, ids, c, a: contacts.add_reminder(view, c.admin, contacts.AddReminder(
            contact_id=a.contact, trigger_date=a.on, user=a.to_user, role=a.to_role))))
    remind.add_argument("contact")
    remind.add_argument("--on", type=parse_date, required=True)
    remind.add_argument("--to-user")
    remind.add_argument("--to-role")
    close = _command(contact_sub, "close", "close an open contact", _contact_unit(
        lambda view, ids, c, a: contacts.close_contact(view, contacts.CloseContact(
            contact_id=a.contact, user=a.user, comment=a.comment or ""), c.clock.now())))
    close.add_argument("contact")
    close.add_argument("--comment")
    listing = _command(contact_sub, "list", "a person's contacts, newest first",
                       ccb_views.contact_list, with_user=False)
    listing.add_argument("person")
