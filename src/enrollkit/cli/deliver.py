"""``enrollkit deliver``: run the sweeper (``deliver_due``) once, or every N seconds, with a
line of progress per run.

Handlers come from your code: ``--handlers package.module:NAME`` names a mapping of
``LifecycleEvent`` to a callable. ``--no-handlers`` applies the status changes and marks
each event delivered without calling anything (a reminder is then consumed unsent: it is
an explicit choice, never the default).
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Mapping
from typing import Any

from enrollkit.cli.connection import connect, location, require_tables
from enrollkit.cli.errors import EXIT_ERROR, EXIT_OK, CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="one run, then exit (the default)")
    when.add_argument(
        "--every",
        type=_positive_seconds,
        metavar="SECONDS",
        help="a run every SECONDS (60 delivers each event within a minute), until interrupted",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--handlers",
        metavar="MODULE:NAME",
        help="your handlers: a mapping of LifecycleEvent to a callable taking a DueEvent",
    )
    which.add_argument(
        "--no-handlers",
        action="store_true",
        help="apply status changes and mark events delivered without calling anything",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("the interval must be more than 0 seconds")
    return value


def load_handlers(reference: str) -> Mapping[Any, Any]:
    """The mapping ``MODULE:NAME`` names."""
    module_name, _, name = reference.partition(":")
    if not module_name or not name:
        raise CommandError(f"--handlers wants MODULE:NAME, not {reference!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CommandError(f"cannot import {module_name!r}: {error}") from None
    handlers = getattr(module, name, None)
    if not isinstance(handlers, Mapping):
        raise CommandError(f"{reference} is not a mapping of LifecycleEvent to a handler")
    return handlers


def cmd_deliver(args: argparse.Namespace) -> int:
    from enrollkit.lifecycle.sweeper import deliver_due

    handlers = {} if args.no_handlers else load_handlers(args.handlers)
    store = connect(args)
    require_tables(store, args)
    print(f"Delivering due events from {store.table_name!r} at {location(args)}", flush=True)
    failed_any = False
    while True:
        report = deliver_due(persistence_layer=store, handlers=handlers)
        failed_any = failed_any or report.failed > 0
        checkpoint = report.checkpoint.date().isoformat() if report.checkpoint else "-"
        print(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} delivered {report.delivered}, "
            f"failed {report.failed}, claimed {report.claimed}, skipped {report.skipped} "
            f"({report.queries} queries; looking back to {checkpoint})",
            flush=True,
        )
        for failure in report.failures:
            print(
                f"  failed: {failure.event.name} of {failure.enrollment_id} due "
                f"{failure.due.isoformat()} (attempt {failure.attempt}, retry at "
                f"{failure.retry_at.isoformat()}): {failure.error}",
                flush=True,
            )
        if args.every is None:
            return EXIT_ERROR if failed_any else EXIT_OK
        time.sleep(args.every)
