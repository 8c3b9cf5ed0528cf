"""Read-only ``c2m-sync ccb`` commands: Control Central search, the account view with alerts,
an SA with its audit log, a premise tree, worklists, contacts and the recorded changes."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any, TypeAlias

from sync.ccb import todo
from sync.ccb.alerts import Alert, dashboard_alerts
from sync.ccb.errors import NotFound
from sync.ccb.info import describe_account, describe_person, describe_sa
from sync.ccb.model import ToDoStatus
from sync.ccb.premises import premise_tree
from sync.ccb.search import SearchBy, search
from sync.cli import ccb_review
from sync.cli.common import CliError, Context, Handler, whole_number
from sync.storage.ccb_view import SqlCcbView

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
CommandFactory = Callable[..., argparse.ArgumentParser]


def register(sub: Subparsers, command: CommandFactory) -> None:
    finder = command(sub, "search", "Control Central search (1.0, 4.6)", _search,
                     with_user=False)
    finder.add_argument("by", choices=[by.value for by in SearchBy])
    finder.add_argument("query")
    account = command(sub, "account", "account view: SAs, info strings and alerts;"
                      " 'account update ACCOUNT ...' changes its details (2.2)",
                      _account_or_update, with_user=False)
    account.add_argument("account", help="the account, or 'update' followed by the account")
    account.add_argument("update_account", nargs="?", metavar="ACCOUNT")
    ccb_review.add_account_update_options(account)
    sa = command(sub, "sa", "an SA with its links, field activities and audit log;"
                 " 'sa impact SA' shows what changing its pending stop touches (2.1)",
                 _sa_or_impact, with_user=False)
    sa.add_argument("sa", help="the SA, or 'impact' followed by the SA")
    sa.add_argument("impact_sa", nargs="?", metavar="SA")
    ccb_review.register(sub, command)
    premise = command(sub, "premise", "a premise tree with SPs, SAs and landlord agreement",
                      _premise, with_user=False)
    premise.add_argument("premise")
    changes = command(sub, "changes", "entities recorded as changed (the outbox hook)",
                      _changes, with_user=False)
    changes.add_argument("--after", type=whole_number("sequence number", 0), default=0,
                         help="sequence number to start after")
    changes.add_argument("--limit", type=whole_number("count", 0), default=100,
                         help="at most this many changes (default 100)")


def _read(context: Context, fn: Callable[[SqlCcbView], Any]) -> Any:
    from sync.cli.ccb import open_store

    store = open_store(context)
    try:
        return store.read(fn)
    finally:
        store.dispose()


def _search(context: Context, args: argparse.Namespace) -> int:
    today = context.clock.business_date()
    result = _read(context, lambda view: search(view, context.admin, SearchBy(args.by),
                                                args.query, today))

    def human() -> None:
        if not result.hits:
            print(f"no match for {args.by} {args.query!r}")
        for hit in result.hits:
            print(f"{hit.person_id}  {hit.info}")
            for line in hit.accounts:
                print(f"  account {line.account_id}  {line.info}")
                for sa in line.sas:
                    print(f"    SA {sa.sa_id}  {sa.info}")
                for alert in line.alerts:
                    print(f"    ! {alert.text}")
        if result.truncated:
            print("(more matches: narrow the query)")

    payload = dataclasses.asdict(result)
    for hit, raw_hit in zip(result.hits, payload["hits"], strict=True):
        for line, raw_line in zip(hit.accounts, raw_hit["accounts"], strict=True):
            raw_line["alerts"] = [_alert_json(alert) for alert in line.alerts]
    context.emit(payload, human)
    return 0


def _alert_json(alert: Alert) -> dict[str, Any]:
    return {"kind": type(alert).__name__, "text": alert.text, **dataclasses.asdict(alert)}


def _account(context: Context, args: argparse.Namespace) -> int:
    admin = context.admin

    def read(view: SqlCcbView) -> dict[str, Any]:
        account = view.account(args.account)
        if account is None:
            raise NotFound("account", args.account, "account_id")
        person = view.person(account.main_person_id)
        return {
            "account": account.model_dump(mode="json"),
            "info": describe_account(admin, view, account),
            "main_person": person.model_dump(mode="json") if person else None,
            "person_info": describe_person(admin, person) if person else None,
            "sas": [{"id": sa.id, "status": sa.status.value, "status_label": sa.status.label,
                     "sa_type": sa.sa_type, "start_date": sa.start_date,
                     "end_date": sa.end_date, "premise_id": sa.premise_id,
                     "info": describe_sa(admin, view, sa)}
                    for sa in view.sas_of_account(account.id)],
            "alerts": [_alert_json(alert)
                       for alert in dashboard_alerts(view, admin, account.id)],
            "contacts": [contact.id for contact in view.contacts_of_person(person.id)]
            if person else [],
        }

    payload = _read(context, read)

    def human() -> None:
        print(f"account {args.account}: {payload['info']}")
        print(f"main person: {payload['person_info']}")
        context.table("Service agreements", ["SA", "type", "status", "start", "end", "info"],
                      [(sa["id"], sa["sa_type"], f"{sa['status']} {sa['status_label']}",
                        sa["start_date"], sa["end_date"], sa["info"]) for sa in payload["sas"]])
        for alert in payload["alerts"]:
            print(f"! {alert['text']}")

    context.emit(payload, human)
    return 0


def _second_word(args: argparse.Namespace, view: str, word: str, second: str) -> bool:
    """``ccb VIEW ID`` shows the view; ``ccb VIEW WORD ID`` runs the sub-command WORD."""
    if getattr(args, second) is None:
        return False
    if getattr(args, view) != word:
        raise CliError(f"ccb {view}: expected '{view} ID' or '{view} {word} ID'")
    return True


def _account_or_update(context: Context, args: argparse.Namespace) -> int:
    if _second_word(args, "account", "update", "update_account"):
        return ccb_review.account_update(context, args)
    return _account(context, args)


def _sa_or_impact(context: Context, args: argparse.Namespace) -> int:
    if _second_word(args, "sa", "impact", "impact_sa"):
        return ccb_review.sa_impact(context, args.impact_sa)
    return _sa(context, args)


def _sa(context: Context, args: argparse.Namespace) -> int:
    admin = context.admin

    def read(view: SqlCcbView) -> dict[str, Any]:
        sa = view.sa(args.sa)
        if sa is None:
            raise NotFound("SA", args.sa, "sa_id")
        return {"sa": sa.model_dump(mode="json"), "info": describe_sa(admin, view, sa),
                "links": [link.model_dump(mode="json") for link in view.links_of_sa(sa.id)],
                "field_activities": [fa.model_dump(mode="json")
                                     for fa in view.field_activities_of_sa(sa.id)],
                "sub_sas": [sub.id for sub in view.sub_sas(sa.id)]}

    payload = _read(context, read)

    def human() -> None:
        sa = payload["sa"]
        print(f"SA {sa['id']}: {payload['info']} (account {sa['account_id']}, "
              f"version {sa['version']})")
        context.table("SA/SP links", ["link", "SP", "start", "stop", "start read",
                                      "stop read"],
                      [(link["id"], link["sp_id"], link["start_date"], link["stop_date"],
                        link["start_read"], link["stop_read"]) for link in payload["links"]])
        if payload["field_activities"]:
            context.table("Field activities", ["FA", "type", "purpose", "date", "status"],
                          [(fa["id"], fa["fa_type"], fa["purpose"], fa["scheduled_date"],
                            fa["status"]) for fa in payload["field_activities"]])
        context.table("Audit log", ["at", "user", "action", "from", "to", "details"],
                      [(entry["at"], entry["user"], entry["action"], entry["from_status"],
                        entry["to_status"], entry["details"]) for entry in sa["audit"]])

    context.emit(payload, human)
    return 0


def _premise(context: Context, args: argparse.Namespace) -> int:
    def read(view: SqlCcbView) -> list[dict[str, Any]]:
        tree = []
        for premise in premise_tree(view, args.premise):
            agreement = (view.landlord_agreement(premise.landlord_agreement_id)
                         if premise.landlord_agreement_id else None)
            tree.append({
                "premise": premise.model_dump(mode="json"),
                "landlord_agreement": agreement.model_dump(mode="json") if agreement else None,
                "service_points": [sp.model_dump(mode="json")
                                   for sp in view.service_points_at(premise.id)],
                "sas": [{"id": sa.id, "account_id": sa.account_id, "sa_type": sa.sa_type,
                         "status": sa.status.value, "start_date": sa.start_date,
                         "end_date": sa.end_date} for sa in view.sas_at_premise(premise.id)],
            })
        return tree

    tree = _read(context, read)

    def human() -> None:
        for node in tree:
            premise = node["premise"]
            indent = "  " if premise["parent_premise_id"] else ""
            agreement = node["landlord_agreement"]
            landlord = f"  [landlord agreement {agreement['id']}]" if agreement else ""
            line2 = f", {premise['address']['line2']}" if premise["address"]["line2"] else ""
            print(f"{indent}{premise['id']}  {premise['address']['line1']}{line2}{landlord}")
            for sp in node["service_points"]:
                print(f"{indent}  SP {sp['id']} ({sp['sp_type']})")
            for sa in node["sas"]:
                print(f"{indent}  SA {sa['id']} {sa['sa_type']} status {sa['status']} "
                      f"account {sa['account_id']} from {sa['start_date']}"
                      + (f" to {sa['end_date']}" if sa["end_date"] else ""))

    context.emit({"premises": tree}, human)
    return 0


def todo_list(context: Context, args: argparse.Namespace) -> int:
    status = ToDoStatus(args.status) if args.status else None
    entries = _read(context, lambda view: view.todos(role=args.role, todo_type=args.todo_type,
                                                     status=status, unfinished=args.unfinished))
    matched = todo.list_todos(entries, context.admin, assigned_user=args.assigned_user)
    end = None if args.limit is None else args.offset + args.limit
    worklist = matched[args.offset:end]
    payload = [entry.model_dump(mode="json") for entry in worklist]
    title = "To Do entries" if len(worklist) == len(matched) else (
        f"To Do entries {args.offset + 1 if worklist else args.offset}-"
        f"{args.offset + len(worklist)} of {len(matched)}")
    context.emit(payload, lambda: context.table(
        title, ["id", "type", "role", "status", "assigned", "drill key", "message"],
        [(e.id, e.todo_type, e.role, e.status.value, e.assigned_user,
          f"{e.drill_key.kind} {e.drill_key.id}", e.message) for e in worklist]))
    return 0


def contact_list(context: Context, args: argparse.Namespace) -> int:
    found = _read(context, lambda view: view.contacts_of_person(args.person))
    payload = [contact.model_dump(mode="json") for contact in found]
    context.emit(payload, lambda: context.table(
        f"Contacts of {args.person}", ["id", "at", "type", "method", "user", "open",
                                       "comments"],
        [(c.id, c.contacted_at.isoformat(), f"{c.contact_class}/{c.contact_type}", c.method,
          c.user, "yes" if c.open else "no", c.comments) for c in found]))
    return 0


def _changes(context: Context, args: argparse.Namespace) -> int:
    from sync.cli.ccb import open_store

    store = open_store(context)
    try:
        recorded = store.entity_changes(after_seq=args.after, limit=args.limit)
    finally:
        store.dispose()
    payload = [dataclasses.asdict(change) for change in recorded]
    context.emit(payload, lambda: context.table(
        "Recorded changes", ["seq", "entity", "id", "at", "unit"],
        [(c.seq, c.entity_type, c.entity_id, c.changed_at.isoformat(), c.unit_id)
         for c in recorded]))
    return 0


# ``Handler`` is the type every function above satisfies; referenced for readers and mypy.
_HANDLERS: tuple[Handler, ...] = (_search, _account, _sa, _premise, todo_list, contact_list,
                                  _changes)
