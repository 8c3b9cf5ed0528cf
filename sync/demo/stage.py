"""Where the demonstration plays: both sides of the pipeline, a fixed business clock, the sample
building loaded, and the few verbs the scenes are written in (run a CCB command, load master
data, run a batch, settle the pipeline, read either side)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sync.batches import BatchReport, JobContext, load_jobs
from sync.ccb.changes import Changes
from sync.ccb.commands import Command
from sync.ccb.dispatch import unit_of_work
from sync.ccb.loading import load_master_data, parse_text
from sync.ccb.model import FieldActivity, SaStatus, ServiceAgreement
from sync.clock import FixedClock
from sync.config.admin import AdminConfig
from sync.config.settings import Settings, TopicNames
from sync.mdm.model import UsageSubscription
from sync.pipeline.local import LocalPipeline, SettleReport
from sync.storage.ccb_batch_queries import SqlBatchQueries
from sync.storage.ccb_view import SqlCcbView
from sync.storage.run_locks import run_locks_for

# The sample building of the process document (examples/premise-landlord.yaml in the source tree).
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "premise-landlord.yaml"
START_DATE = dt.date(2025, 3, 3)
CCB_DB = "demo-ccb.db"
MDM_DB = "demo-mdm.db"
DEFAULT_BROKER = "memory://demo"
DEMO_USER = "demo"

T = TypeVar("T")


class DemoError(Exception):
    """The demonstration cannot start (sample data missing, a workdir that is not a folder)."""


def prepare_workdir(workdir: Path) -> tuple[Path, Path]:
    """The two demo databases in ``workdir``, wiped so that a rerun starts clean (only the demo's
    own files are removed, never anything else in the folder)."""
    if workdir.exists() and not workdir.is_dir():
        raise DemoError(f"--workdir {workdir}: exists and is not a folder")
    workdir.mkdir(parents=True, exist_ok=True)
    databases = (workdir / CCB_DB, workdir / MDM_DB)
    for database in databases:
        for leftover in (database, *(database.with_name(database.name + suffix)
                                     for suffix in ("-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return databases


def demo_settings(workdir: Path, broker_url: str, run_id: str, partitions: int = 3) -> Settings:
    """Settings for one run: SQLite files in ``workdir`` and topics named for the run, so that a
    rerun on the same broker (or the same process) never reads an earlier run's records."""
    ccb, mdm = prepare_workdir(workdir)
    prefix = f"c2m-demo-{run_id}"
    return Settings(ccb_db_url=f"sqlite:///{ccb}", mdm_db_url=f"sqlite:///{mdm}",
                    broker_url=broker_url, topic_partitions=partitions,
                    topics=TopicNames(sync_requests=f"{prefix}.sync-requests",
                                      acknowledgements=f"{prefix}.sync-acks",
                                      dead_letters=f"{prefix}.sync-dead-letters"))


@dataclass
class Stage:
    pipeline: LocalPipeline
    admin: AdminConfig
    clock: FixedClock

    @classmethod
    async def open(cls, settings: Settings, admin: AdminConfig) -> Stage:
        clock = FixedClock(START_DATE, time_zone=admin.installation.base_time_zone)
        pipeline = LocalPipeline(settings, admin, clock)
        await pipeline.start()
        return cls(pipeline, admin, clock)

    async def close(self) -> None:
        await self.pipeline.stop()

    # --- CCB ------------------------------------------------------------------------------

    def run(self, command: Command) -> Changes:
        """A CSR (or system) command on CCB, on the business date."""
        return self.pipeline.outbox.store.execute(unit_of_work(
            command, self.admin, self.clock.business_date(), self.clock.now()))

    def load(self, data: Any, source: str) -> Changes:
        """Master data loaded the way ``c2m-sync ccb load`` does (upsert by id)."""
        return self.pipeline.outbox.store.execute(load_master_data(
            data, source, self.admin, self.clock.now(), DEMO_USER))

    def sample(self) -> Any:
        if not SAMPLE.is_file():
            raise DemoError(f"sample data {SAMPLE} not found: run the demo from a source "
                            "checkout of c2m-sync")
        return parse_text(SAMPLE.read_text("utf-8"), str(SAMPLE))

    def batch(self, code: str) -> BatchReport:
        """A batch job on the business date, as ``c2m-sync batch run CODE`` runs it."""
        store = self.pipeline.outbox.store
        return load_jobs().run(code, JobContext(
            admin=self.admin, clock=self.clock, store=store,
            queries=SqlBatchQueries(store.engine), settings=self.pipeline.settings,
            locks=run_locks_for(store.engine)))

    def read(self, fn: Callable[[SqlCcbView], T]) -> T:
        return self.pipeline.outbox.store.read(fn)

    def sa(self, sa_id: str) -> ServiceAgreement:
        found = self.read(lambda view: view.sa(sa_id))
        if found is None:
            raise DemoError(f"SA {sa_id!r} not found in CCB")
        return found

    def sas(self) -> list[ServiceAgreement]:
        return sorted(self.read(lambda view: view.sas_with_status(*SaStatus)),
                      key=lambda sa: sa.id)

    def new_sas(self, before: set[str]) -> list[ServiceAgreement]:
        """SAs created since ``before`` (a set of SA ids), by id."""
        return [sa for sa in self.sas() if sa.id not in before]

    def field_activities(self) -> list[FieldActivity]:
        found = self.read(lambda view: [fa for sa in view.sas_with_status(*SaStatus)
                                        for fa in view.field_activities_of_sa(sa.id)])
        return sorted(found, key=lambda fa: (fa.scheduled_date, fa.id))

    # --- MDM and the pipeline ---------------------------------------------------------------

    def us(self, sa_id: str) -> UsageSubscription | None:
        return self.pipeline.mdm.get_us(sa_id)

    async def settle(self) -> SettleReport:
        return await self.pipeline.settle()
