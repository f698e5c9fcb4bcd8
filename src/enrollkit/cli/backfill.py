"""``enrollkit backfill``: bring enrollments written before the listing indexes into them
(a maintenance tool: it scans the enrollments table, a page at a time)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from enrollkit.cli.connection import connect, require_tables
from enrollkit.cli.errors import EXIT_OK, CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=Path,
        help="where to keep the position after each page; an existing file resumes the run "
        "where it stopped (it is removed when the whole table is done)",
    )
    parser.add_argument(
        "--page-size", type=int, default=100, metavar="N", help="items per Scan page"
    )


def cmd_backfill(args: argparse.Namespace) -> int:
    from enrollkit.operations.backfill import backfill_indexes

    checkpoint_file: Path | None = args.checkpoint
    checkpoint = None
    if checkpoint_file is not None and checkpoint_file.exists():
        checkpoint = checkpoint_file.read_text("utf-8").strip() or None
        if checkpoint is not None:
            print(f"Resuming from {checkpoint_file}.")
    store = connect(args)
    require_tables(store, args)
    progress = None
    for progress in backfill_indexes(
        persistence_layer=store, checkpoint=checkpoint, page_size=args.page_size
    ):
        for problem in progress.unreadable:
            print(f"  left as is: {problem}")
        print(
            f"scanned {progress.scanned} items: {progress.updated} enrollments indexed, "
            f"{progress.up_to_date} already were, {progress.schedules_indexed} schedule "
            f"items put in the due-time index, {progress.unreadable_total} unreadable",
            flush=True,
        )
        if checkpoint_file is not None and progress.checkpoint is not None:
            _write_atomically(checkpoint_file, progress.checkpoint)
    if checkpoint_file is not None and checkpoint_file.exists():
        checkpoint_file.unlink()
    if progress is None:
        raise CommandError("the scan returned no page")  # a backend that broke its contract
    print("Done: every readable enrollment is in the listing indexes.")
    return EXIT_OK


def _write_atomically(path: Path, text: str) -> None:
    """A crash mid-write leaves the previous checkpoint, never half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, "utf-8")
    os.replace(partial, path)
