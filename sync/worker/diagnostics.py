"""What a worker says about itself when asked: ``kill -USR1 <pid>`` writes the stack of every
thread and of every asyncio task to the worker's standard error, and the worker goes on.

A worker that has gone quiet is either waiting in a thread (a database call, a lock) or
awaiting something on the event loop (a broker reply); the thread stacks show the first and
the task stacks the second. The thread dump is written by :mod:`faulthandler`, from the signal
handler itself, so it comes even when the event loop is blocked; the task dump is written by
the event loop on its next turn.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import signal
import sys

DUMP_SIGNAL = signal.SIGUSR1


def enable_stack_dumps(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGUSR1: the thread stacks now, the task stacks on the loop's next turn."""
    # The loop's handler first; faulthandler's, registered after it with chain=True, writes the
    # thread stacks and then calls it.
    loop.add_signal_handler(DUMP_SIGNAL, dump_tasks, loop)
    faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=True)


def disable_stack_dumps(loop: asyncio.AbstractEventLoop) -> None:
    faulthandler.unregister(DUMP_SIGNAL)
    loop.remove_signal_handler(DUMP_SIGNAL)


def dump_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """Write (and return) the await chain of every task of ``loop`` that is not done: each
    coroutine it is suspended in, outermost first, and what the innermost one awaits."""
    out = io.StringIO()
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    out.write(f"--- {len(tasks)} asyncio task(s)\n")
    for task in sorted(tasks, key=lambda task: task.get_name()):
        out.write(f"task {task.get_name()}:\n")
        awaited: object = task.get_coro()
        # Task.print_stack shows the outermost coroutine only; the chain is in cr_await.
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                out.write(f"    awaiting {awaited!r}\n")
                break
            code = frame.f_code
            out.write(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    text = out.getvalue()
    sys.stderr.write(text)
    sys.stderr.flush()
    return text
