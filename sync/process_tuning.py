"""Settings of the Python process for the commands that run long and allocate much: the
workers and the batch runs.

Objects allocated before the cyclic collector looks at the youngest generation: 10,000 instead
of Python's 700. A consumed record or a unit of a batch allocates a few hundred objects
(models, rows, statements) and leaves no reference cycles behind, so at the default the
collector runs every few records and finds nothing, and its full collections walk every object
of the loaded libraries: about a quarter of the MDM worker's CPU and a sixth of a mass stop
upload's (``docs/performance.md``). Reference counting still frees everything at once; this
only makes the search for cycles rarer.
"""

from __future__ import annotations

import gc

YOUNGEST_GENERATION_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Once the libraries are loaded: what exists now (modules, schemas, compiled statements)
    lives as long as the process, so the collector stops walking it (``gc.freeze``), and it
    looks for cycles less often. For a process of its own: in a process that is also doing
    other things (a test run), frozen objects that later become garbage in a cycle are never
    collected."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, older, oldest)
