"""The console under test: a CCB/MDM pair loaded with the sample building, the console served
by uvicorn on a free loopback port in this process, and helpers for forms and waits."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from sync.api.app import create_app
from sync.api.runtime import AccessPolicy, Runtime
from sync.ccb.loading import load_master_data, parse_text
from sync.config.admin import AdminConfig, load_admin_config
from sync.config.settings import Settings

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "premise-landlord.yaml"
# Where the console tests write their screenshots: a folder of the run, so that running the
# tests leaves the working tree as it was; ``make screenshots`` points it at docs/screenshots
# to refresh the README's and the console guide's pictures.
SCREENSHOTS = Path(os.environ.get("C2M_SYNC_SCREENSHOTS_DIR") or ROOT / "var" / "screenshots")
BUSINESS_DATE = dt.date(2025, 3, 3)
TOKEN = "console-test-token"
ADMIN = load_admin_config()
T = TypeVar("T")


def load_example(runtime: Runtime) -> None:
    """The sample building into CCB, through the outbox (every entity queued for MDM)."""
    runtime.ccb.execute(load_master_data(
        parse_text(EXAMPLE.read_text("utf-8"), str(EXAMPLE)), str(EXAMPLE), runtime.admin,
        runtime.clock.now(), "loader"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(settings: Settings, admin: AdminConfig = ADMIN, *, open_reads: bool = True
           ) -> Iterator[tuple[str, Runtime]]:
    """The API and console app on a loopback port (uvicorn in a thread), stopped on exit."""
    runtime = Runtime(settings, admin, AccessPolicy(tokens=frozenset({TOKEN}),
                                                    open_reads=open_reads))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    wait_until("the console server to start", lambda: server.started, timeout_s=30)
    try:
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_until(what: str, condition: Callable[[], T], timeout_s: float = 60,
               every_s: float = 0.5) -> T:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def flashes(html: str, kind: str) -> list[str]:
    return re.findall(rf'class="flash {kind}"[^>]*>([^<]*)<', html)
