"""The demonstration's report: the scenes, both sides' final state, the sync requests, and the
comparison of what CCB says MDM should hold with what MDM holds (:mod:`sync.reconcile.compare`).

:meth:`DemoReport.to_dict` is the ``--json`` document; ``c2m-sync demo`` prints the same as
tables, ending with the comparison's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.ccb.changes import SA
from sync.demo.scenes import Scene
from sync.demo.stage import Stage
from sync.reconcile.compare import Comparison, compare, expected_from_ccb, snapshot_versions


@dataclass
class DemoReport:
    settings: dict[str, Any]
    business_dates: tuple[str, str]
    scenes: list[Scene]
    service_agreements: list[dict[str, Any]]
    usage_subscriptions: list[dict[str, Any]]
    field_activities: list[dict[str, Any]]
    todos: list[dict[str, Any]]
    sync_requests: dict[str, Any]
    comparison: Comparison

    @property
    def agree(self) -> bool:
        return self.comparison.agree

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "business_dates": {"first": self.business_dates[0], "last": self.business_dates[1]},
            "scenes": [scene.to_dict() for scene in self.scenes],
            "service_agreements": self.service_agreements,
            "usage_subscriptions": self.usage_subscriptions,
            "field_activities": self.field_activities,
            "todos": self.todos,
            "sync_requests": self.sync_requests,
            "comparison": self.comparison.to_dict(),
        }


def comparison_of(stage: Stage) -> Comparison:
    outbox = stage.pipeline.outbox
    versions = snapshot_versions(outbox.find(entity_type=SA))
    sa_ids = [sa.id for sa in stage.sas()]
    expected = stage.read(lambda view: expected_from_ccb(view, stage.admin, sa_ids, versions))
    return compare(expected, stage.pipeline.mdm.list_us())


def collect(stage: Stage, scenes: list[Scene], first_date: str) -> DemoReport:
    settings = stage.pipeline.settings
    outbox = stage.pipeline.outbox
    requests = outbox.find()
    todos = stage.read(lambda view: view.todos())
    return DemoReport(
        settings={"broker_url": settings.broker_url, "ccb_db_url": settings.ccb_db_url,
                  "mdm_db_url": settings.mdm_db_url,
                  "topics": settings.topics.model_dump()},
        business_dates=(first_date, stage.clock.business_date().isoformat()),
        scenes=scenes,
        service_agreements=[{
            "id": sa.id, "account_id": sa.account_id, "sa_type": sa.sa_type,
            "status": sa.status.value, "status_label": sa.status.label,
            "start_date": sa.start_date.isoformat(),
            "end_date": sa.end_date.isoformat() if sa.end_date else None,
            "premise_id": sa.premise_id, "created_by": sa.created_by.kind,
        } for sa in stage.sas()],
        usage_subscriptions=[{
            "id": us.external_id, "account_id": us.external_account_id, "us_type": us.us_type,
            "status": us.status.value, "start_date": us.start_date.isoformat(),
            "end_date": us.end_date.isoformat() if us.end_date else None,
            "sp_links": [{"sp_id": link.sp_id, "start": link.start.isoformat(),
                          "stop": link.stop.isoformat() if link.stop else None}
                         for link in us.sp_links],
            "version": us.last_applied_version,
        } for us in sorted(stage.pipeline.mdm.list_us(), key=lambda us: us.external_id)],
        field_activities=[{
            "id": fa.id, "fa_type": fa.fa_type, "sa_id": fa.sa_id, "sp_id": fa.sp_id,
            "purpose": fa.purpose.value, "scheduled_date": fa.scheduled_date.isoformat(),
            "status": fa.status.value, "completion_read": fa.completion_read,
        } for fa in stage.field_activities()],
        todos=[{
            "id": todo.id, "todo_type": todo.todo_type, "role": todo.role,
            "status": todo.status.value, "drill_key": f"{todo.drill_key.kind} {todo.drill_key.id}",
            "message": todo.message, "log": [entry.comment for entry in todo.log],
        } for todo in todos],
        sync_requests={
            "total": len(requests),
            "counts": outbox.counts(),
            "in_error": [{
                "id": request.id, "entity": request.key, "version": request.version,
                "state": request.state.value, "note": request.note,
                "errors": [error.model_dump() for error in request.errors],
            } for request in requests if request.errors],
        },
        comparison=comparison_of(stage),
    )


def sync_line(counts: dict[str, int]) -> str:
    """A scene's sync counts in words (``published 5, applied 4, rejected 1, ...``)."""
    words = {"published": "published", "mdm_applied": "applied", "mdm_rejected": "rejected",
             "mdm_duplicate": "duplicates", "ack_retry": "re-queued for order",
             "ack_error": "in error", "ack_synchronized": "synchronized",
             "todos_raised": "To Dos raised"}
    return ", ".join(f"{word} {counts[key]}" for key, word in words.items() if counts.get(key))
