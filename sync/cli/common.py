"""What every CLI command shares: settings, admin data, the clock, output and errors."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from sync.clock import Clock, clock_for
from sync.config.admin import AdminConfig, load_admin_config
from sync.config.settings import Settings, load_settings
from sync.transport.bus import Bus, bus_of

T = TypeVar("T")


class CliError(Exception):
    """An error the CLI reports as one line on stderr, with exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


Handler = Callable[["Context", argparse.Namespace], int]


@dataclass
class Context:
    """Lazily built shared state for one CLI invocation."""

    args: argparse.Namespace
    _settings: Settings | None = None
    _admin: AdminConfig | None = None
    stdout: Console = field(default_factory=lambda: Console(soft_wrap=True))

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings({
                "ccb_db_url": self.args.ccb_db_url,
                "mdm_db_url": self.args.mdm_db_url,
                "broker_url": self.args.broker,
                "business_date": self.args.business_date,
                "admin_config": self.args.admin_config,
            })
        return self._settings

    @property
    def admin(self) -> AdminConfig:
        if self._admin is None:
            self._admin = load_admin_config(self.settings.admin_config)
        return self._admin

    @property
    def clock(self) -> Clock:
        return clock_for(self.settings.business_date, self.admin.installation.base_time_zone)

    @property
    def json_output(self) -> bool:
        return bool(getattr(self.args, "json", False))

    def emit(self, payload: Any, human: Callable[[], None] | None = None) -> None:
        """Print ``payload`` as JSON under ``--json``, else call ``human`` (or pretty-print)."""
        if self.json_output or human is None:
            print(json.dumps(payload, indent=2, default=_json_default, sort_keys=False))
        else:
            human()

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        self.stdout.print(table)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid date {text!r} (expected YYYY-MM-DD)") \
            from None


def whole_number(what: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type for a whole number from ``low`` up to ``high`` (no upper bound when
    None); argparse names the option when it refuses, the message names the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"out of range {low}..{high}" if high is not None else f"below {low}"
            raise argparse.ArgumentTypeError(f"{what} {value} {bounds}")
        return value

    return parse


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def run_on_bus(settings: Settings, work: Callable[[Bus], Awaitable[T]]) -> T:
    """Run ``work`` on a started bus of ``settings`` and stop it again; the caller turns
    transport errors into one-line CLI errors."""

    async def run() -> T:
        bus = bus_of(settings)
        await bus.start()
        try:
            return await work(bus)
        finally:
            await bus.stop()

    # The clients log every failed connection attempt; the caller's one-line error says it all.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return asyncio.run(run())
