"""What the route modules share: the runtime of the request, reads on a consistent view of the
CCB store, and commands run as one unit of work (the same path as the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from sync.api.models import ChangesOut
from sync.api.runtime import Runtime
from sync.ccb import commands as cmd
from sync.ccb.details import DetailsCommand
from sync.ccb.dispatch import unit_of_work
from sync.ccb.ports import CcbUnitOfWork
from sync.storage.ccb_view import SqlCcbView

T = TypeVar("T")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


def read(runtime: Runtime, fn: Callable[[SqlCcbView], T]) -> T:
    """``fn`` on one consistent, read-only view of the CCB store."""
    return runtime.ccb.read(fn)


def run_unit(runtime: Runtime, unit: CcbUnitOfWork) -> ChangesOut:
    """One unit of work on the CCB store (with its outbox); what it changed."""
    return ChangesOut.of(runtime.ccb.execute(unit))


def run_command(runtime: Runtime, command: cmd.Command | DetailsCommand) -> ChangesOut:
    """A domain command on the clock's business date and time."""
    clock = runtime.clock
    return run_unit(runtime, unit_of_work(command, runtime.admin, clock.business_date(),
                                          clock.now()))
