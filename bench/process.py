"""The benchmark's own process set as the command it stands for sets its process: the workers
and ``c2m-sync batch run`` tune the garbage collector
(:func:`sync.process_tuning.tune_garbage_collection`), so a benchmark measuring their work does
the same unless ``--gc default`` asks for Python's settings (to measure what the tuning gives).
"""

from __future__ import annotations

import argparse

from sync.process_tuning import tune_garbage_collection

CHOICES = ("tuned", "default")


def add_gc_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gc", choices=CHOICES, default="tuned",
                        help="the garbage collector as the workers and batch runs set it "
                             "(tuned, the default), or Python's (default)")


def apply_gc_option(args: argparse.Namespace) -> None:
    if args.gc == "tuned":
        tune_garbage_collection()
