"""Playing the demonstration: open the stage, play every scene in order, collect the report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sync.ccb.errors import CcbError
from sync.ccb.loading import MasterDataError
from sync.config.admin import AdminConfig
from sync.demo.report import DemoReport, collect
from sync.demo.scenes import SCENES
from sync.demo.stage import DEFAULT_BROKER, START_DATE, DemoError, Stage, demo_settings
from sync.mapping.snapshots import SnapshotError


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    run_id: str  # names this run's topics
    broker_url: str = DEFAULT_BROKER


async def play_demo(options: DemoOptions, admin: AdminConfig) -> DemoReport:
    settings = demo_settings(options.workdir, options.broker_url, options.run_id)
    stage = await Stage.open(settings, admin)
    try:
        scenes = []
        for number, scene in enumerate(SCENES, start=1):
            try:
                played = await scene(stage)
            except (CcbError, MasterDataError, SnapshotError) as error:
                # The sample or the admin data does not support the scene: say which one.
                name = scene.__name__.replace("_", " ")
                raise DemoError(f"scene {number} ({name}) failed: {error}") from error
            played.number = number
            scenes.append(played)
        return collect(stage, scenes, START_DATE.isoformat())
    finally:
        await stage.close()
